"""Answers the connector may give without asking the service (docs/protocols/pcsc-relay.md).

Both kinds are computed by running the applet itself, with ports that refuse anything secret,
so the connector never learns an answer the applet would not give:

* **constant** answers, handed over when a link opens: the probes card drivers send to
  recognise a card, which answer the same from a fresh card and from one where everything
  was proved.
* **standing** answers, handed over with each APDU's answer and good until the link's next
  request to the service or a power-up: the PIN status query (``VERIFY`` without data) while
  the PIN is verified on this link. OpenSC asks it before every login; answering it locally
  saves a round trip per signature. Only the ``9000`` answer stands: it depends on this
  link's security status, which nothing but this link's own commands and the reader's power
  change (the session's end takes the card out). A ``63Cx`` answer carries the card's retry
  counter, which other readers change, so it is always asked for.
"""

from __future__ import annotations

from typing import NoReturn

from cardvault.card.apdu import CardError, Sw, status_word
from cardvault.card.piv import Algorithm, CardPorts, PinRef, PivState, Slot, process

__all__ = ["PROBES", "STATUS_QUERIES", "constant_answers", "standing_answers"]

#: what card drivers send to recognise a card (traced from OpenSC 0.23, yubico-piv-tool 2.2)
PROBES = tuple(
    bytes.fromhex(apdu)
    for apdu in (
        "00a4040007627601ff000000",  # OpenSC: other applications
        "00a4040006a00000000101",
        "00a404000be82b0601040181c31f020100",
        "00a4040c0fd23300000045737445494420763335",
        "00cadf3005",
        "00a4040005a000000308",  # yubico-piv-tool: SELECT PIV
        "00fd000000",  # GET VERSION, GET SERIAL (YubiKey)
        "00f8000000",
        "00a4040008a000000527200101",  # below version 5: the serial from the OTP application
        "0001100000",
    )
)

#: the PIN status query: OpenSC sends it without Le, yubico-piv-tool with Le = 00
STATUS_QUERIES = (bytes.fromhex("00200080"), bytes.fromhex("0020008000"))

_OK = Sw.SUCCESS.wire()


class _Refusing:
    """Ports for probing: a probe that needs a secret or randomness is not a constant."""

    def _refuse(self) -> NoReturn:
        raise CardError(Sw.NO_PRECISE_DIAGNOSIS, "not a constant answer")

    def random_bytes(self, count: int) -> bytes:
        self._refuse()

    def verify_reference(self, reference: PinRef, value: bytes) -> None:
        self._refuse()

    def change_reference(self, reference: PinRef, value: bytes) -> None:
        self._refuse()

    def management_key(self, algorithm: Algorithm) -> bytearray:
        self._refuse()

    def set_management_key(self, algorithm: Algorithm, key: bytes) -> None:
        self._refuse()

    def generate_key(self, slot: Slot, algorithm: Algorithm) -> bytes:
        self._refuse()

    def sign(self, slot: Slot, algorithm: Algorithm, data: bytes) -> bytes:
        self._refuse()

    def decrypt(self, slot: Slot, algorithm: Algorithm, block: bytes) -> bytes:
        self._refuse()

    def ecdh(self, slot: Slot, algorithm: Algorithm, peer_point: bytes) -> bytes:
        self._refuse()


def constant_answers(state: PivState) -> dict[bytes, bytes]:
    """The probes' answers that change nothing and depend on nothing proved: each is run from
    a freshly powered card and from one where everything was proved, and kept only if both
    answers are the same and neither state moved."""
    fresh = state.powered_up()
    proved = fresh.with_security(pin_verified=True, pin_always=True, management_authenticated=True)
    ports: CardPorts = _Refusing()
    answers = {}
    for apdu in PROBES:
        after_fresh, answer = process(fresh, apdu, ports)
        after_proved, other = process(proved, apdu, ports)
        unchanged = after_fresh == fresh and after_proved == proved
        if unchanged and answer == other and not Sw.more_waiting(status_word(answer)):
            answers[apdu] = answer
    return answers


def standing_answers(state: PivState) -> dict[bytes, bytes]:
    """The status queries the applet answers ``9000`` in ``state`` (one link's whole state)
    without changing it; empty unless the PIN is verified on the link."""
    if not state.security.pin_verified:
        return {}
    ports: CardPorts = _Refusing()
    answers = {}
    for apdu in STATUS_QUERIES:
        after, answer = process(state, apdu, ports)
        if after == state and answer == _OK:
            answers[apdu] = answer
    return answers
