"""What a card PIN may be (DESIGN §3.8 revised): 6 to 8 digits, not trivially guessed.

PIV software pads the PIN to 8 bytes and OpenSC refuses longer ones, so the card PIN is short;
it is accepted only inside a card session that the strong passcode and a second factor opened,
and three wrong tries block it. Within those bounds the rule only refuses the PINs people try
first: one digit repeated (000000) and a straight run up or down (123456, 876543).
An organisation may raise the floor (its policy's ``card_pin_min_length``, 6 to 8), never
the ceiling that PIV software imposes.
"""

from __future__ import annotations

from itertools import pairwise

from cardvault.errors import InvalidInput

__all__ = ["CARD_PIN_MAX", "CARD_PIN_MIN", "WeakCardPin", "check_card_pin", "rule"]

CARD_PIN_MIN = 6
CARD_PIN_MAX = 8


class WeakCardPin(InvalidInput):
    code = "card_pin_weak"


def rule(minimum: int = CARD_PIN_MIN) -> str:
    """The length rule in words for an organisation's shortest card PIN, as every page and
    prompt that asks for a card PIN states it: "6 to 8 digits", "7 or 8 digits", "8 digits"."""
    floor = min(max(CARD_PIN_MIN, minimum), CARD_PIN_MAX)
    if floor == CARD_PIN_MAX:
        return f"{CARD_PIN_MAX} digits"
    joiner = "or" if floor + 1 == CARD_PIN_MAX else "to"
    return f"{floor} {joiner} {CARD_PIN_MAX} digits"


def check_card_pin(pin: str, *, minimum: int = CARD_PIN_MIN) -> None:
    """Raise ``InvalidInput`` (or ``WeakCardPin``) unless ``pin`` may be a card PIN.

    ``minimum`` is the organisation's shortest card PIN; it only raises the floor of 6.
    """
    if not (isinstance(pin, str) and pin.isascii() and pin.isdigit()):
        raise InvalidInput("The card PIN must be digits only.", field="pin")
    floor = max(CARD_PIN_MIN, minimum)
    if floor > CARD_PIN_MIN and len(pin) < floor:
        raise InvalidInput(
            f"Your organisation asks for a card PIN of at least {floor} digits "
            f"(and at most {CARD_PIN_MAX}).",
            field="pin",
        )
    if not CARD_PIN_MIN <= len(pin) <= CARD_PIN_MAX:
        raise InvalidInput(
            f"The card PIN must be {CARD_PIN_MIN} to {CARD_PIN_MAX} digits long.", field="pin"
        )
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    if steps == {0}:
        raise WeakCardPin("A card PIN of one digit repeated is too easy to guess.", field="pin")
    if steps in ({1}, {-1}):
        raise WeakCardPin(
            "A card PIN that counts straight up or down is too easy to guess.", field="pin"
        )
