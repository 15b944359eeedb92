"""What every instruction handler shares: its result type and the small checks they repeat."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cardvault.card import tlv
from cardvault.card.apdu import CardError, CommandApdu, Sw
from cardvault.card.piv.constants import Slot
from cardvault.card.piv.ports import CardPorts
from cardvault.card.piv.state import PivState

__all__ = [
    "Handler",
    "Outcome",
    "dynamic_response",
    "dynamic_template",
    "require_management",
    "require_p1p2",
    "slot_of",
]

#: the Dynamic Authentication Template of GENERAL AUTHENTICATE (SP 800-73-4 Part 2 §3.2.4)
DYNAMIC_AUTH_TEMPLATE = 0x7C


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """A handler's answer: the next state, the response data, and the status word.

    Refusals that leave the state as it was raise ``CardError``; an Outcome with another
    status word is for answers that change state too (a wrong PIN counts down)."""

    state: PivState
    data: bytes = b""
    sw: int = Sw.SUCCESS


Handler = Callable[[PivState, CommandApdu, CardPorts], Outcome]


def dynamic_template(data: bytes) -> dict[int, bytes]:
    """The items of the ``7C`` template, by tag."""
    return tlv.decode_map(tlv.decode_single(data, DYNAMIC_AUTH_TEMPLATE))


def dynamic_response(tag: int, value: bytes) -> bytes:
    return tlv.encode(DYNAMIC_AUTH_TEMPLATE, tlv.encode(tag, value))


def require_management(state: PivState) -> None:
    if not state.security.management_authenticated:
        raise CardError(Sw.SECURITY_STATUS_NOT_SATISFIED, "authenticate with the management key")


def require_p1p2(command: CommandApdu, p1: int, p2: int) -> None:
    if (command.p1, command.p2) != (p1, p2):
        raise CardError(Sw.INCORRECT_P1P2)


def slot_of(reference: int) -> Slot:
    """An asymmetric key slot, or 6A86 for anything else."""
    try:
        slot = Slot(reference)
    except ValueError:
        raise CardError(Sw.INCORRECT_P1P2, "no such key reference") from None
    if not slot.is_asymmetric:
        raise CardError(Sw.INCORRECT_P1P2, "9B holds no key pair")
    return slot
