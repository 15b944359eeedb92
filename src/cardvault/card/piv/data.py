"""Data object instructions: GET DATA and PUT DATA (SP 800-73-4 Part 2 §3.1.2, §3.3.1), and the
YubiKey GET VERSION / GET SERIAL that yubico-piv-tool asks on every connect.

GET VERSION answers cardvault's version (``APPLET_VERSION``). Below 5, yubico-piv-tool reads
the serial as from a YubiKey 4: SELECT of the OTP application (answered ``9000``, PIV stays
current), the OTP request ``01`` with P1 ``10``, SELECT PIV again. Both ways give the card's
serial, which the service derives from the card serial (services/piv/image.py)."""

from __future__ import annotations

from cardvault.card import tlv
from cardvault.card.apdu import CardError, CommandApdu, Sw
from cardvault.card.piv import objects
from cardvault.card.piv.constants import APPLET_VERSION, ObjectId
from cardvault.card.piv.handlers import Outcome, require_management, require_p1p2
from cardvault.card.piv.ports import CardPorts
from cardvault.card.piv.state import MAX_OBJECT_BYTES, MAX_OBJECTS_TOTAL, PivState

__all__ = [
    "PUBLIC_OBJECTS",
    "get_data",
    "get_otp_serial",
    "get_serial",
    "get_version",
    "public_objects",
    "put_data",
]

_OTP_DEVICE_SERIAL = 0x10
_TAG_LIST = 0x5C
_CONTAINER = 0x53


def get_data(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """GET DATA ``5C tag``: the object in its ``53`` container (Discovery in its own ``7E``)."""
    require_p1p2(command, 0x3F, 0xFF)
    tag = _tag(tlv.decode_single(command.data, _TAG_LIST))
    if tag == ObjectId.DISCOVERY:
        return Outcome(state=state, data=objects.discovery())
    if ObjectId.needs_pin(tag) and not state.security.pin_verified:
        raise CardError(Sw.SECURITY_STATUS_NOT_SATISFIED, "this object needs the PIN")
    content = state.object(tag)
    if content is None:
        raise CardError(Sw.FILE_NOT_FOUND, "no such object on the card")
    return Outcome(state=state, data=tlv.encode(_CONTAINER, content))


def put_data(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """PUT DATA ``5C tag 53 content``; an empty ``53`` deletes the object."""
    require_p1p2(command, 0x3F, 0xFF)
    require_management(state)
    items = tlv.decode(command.data)
    if [item.tag for item in items] != [_TAG_LIST, _CONTAINER]:
        raise CardError(Sw.INCORRECT_DATA, "expected 5C tag, then 53 content")
    tag, content = _tag(items[0].value), items[1].value
    if not ObjectId.writable(tag):
        raise CardError(Sw.INCORRECT_DATA, "this object cannot be written")
    _require_room(state, tag, len(content))
    return Outcome(state=state.with_object(tag, content or None))


def _tag(value: bytes) -> int:
    if not 1 <= len(value) <= 3:
        raise CardError(Sw.INCORRECT_DATA, "an object tag is 1 to 3 bytes")
    return int.from_bytes(value, "big")


def _require_room(state: PivState, tag: int, size: int) -> None:
    others = sum(len(content) for other, content in state.objects if other != tag)
    if size > MAX_OBJECT_BYTES or others + size > MAX_OBJECTS_TOTAL:
        raise CardError(Sw.NOT_ENOUGH_MEMORY, "the object does not fit on the card")


def get_version(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """GET VERSION (YubiKey ``FD``): cardvault's version, three bytes."""
    return Outcome(state=state, data=APPLET_VERSION)


def get_serial(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """GET SERIAL (YubiKey 5 ``F8``): the card's serial, four bytes big-endian."""
    return Outcome(state=state, data=state.serial.to_bytes(4, "big"))


def get_otp_serial(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """The OTP application's serial request (``01``, P1 ``10``), as a YubiKey 4 answers it."""
    if command.p1 != _OTP_DEVICE_SERIAL:
        raise CardError(Sw.INCORRECT_P1P2, "only the device serial is answered")
    return get_serial(state, command, ports)


#: objects anyone may read (SP 800-73-4 Part 1 Table 3, access rule "Always") that a reader
#: connection may keep for itself: they change only through PUT DATA with the management key
PUBLIC_OBJECTS: tuple[int, ...] = (
    ObjectId.DISCOVERY,
    ObjectId.CARD_CAPABILITY_CONTAINER,
    ObjectId.CHUID,
    ObjectId.SECURITY_OBJECT,
    ObjectId.CERT_PIV_AUTHENTICATION,
    ObjectId.CERT_DIGITAL_SIGNATURE,
    ObjectId.CERT_KEY_MANAGEMENT,
    ObjectId.CERT_CARD_AUTHENTICATION,
    ObjectId.KEY_HISTORY,
    *range(ObjectId.RETIRED_CERT_1, ObjectId.RETIRED_CERT_20 + 1),
)


def public_objects(state: PivState) -> dict[int, bytes | None]:
    """What GET DATA answers for each public object: the response data, or None (6A82)."""
    answers: dict[int, bytes | None] = {}
    for tag in PUBLIC_OBJECTS:
        if tag == ObjectId.DISCOVERY:
            answers[tag] = objects.discovery()
            continue
        content = state.object(tag)
        answers[tag] = None if content is None else tlv.encode(_CONTAINER, content)
    return answers
