"""What a card PIN may be (DESIGN §3.8 revised): 6 to 8 digits, not trivially guessed.

PIV software pads the PIN to 8 bytes and OpenSC refuses longer ones, so the card PIN is short;
it is accepted only inside a card session that the strong passcode and a second factor opened,
and three wrong tries block it. Within those bounds the rule only refuses the PINs people try
first: one digit repeated (000000) and a straight run up or down (123456, 876543).
"""

from __future__ import annotations

from itertools import pairwise

from cardvault.errors import InvalidInput

__all__ = ["CARD_PIN_MAX", "CARD_PIN_MIN", "WeakCardPin", "check_card_pin"]

CARD_PIN_MIN = 6
CARD_PIN_MAX = 8


class WeakCardPin(InvalidInput):
    code = "card_pin_weak"


def check_card_pin(pin: str) -> None:
    """Raise ``InvalidInput`` (or ``WeakCardPin``) unless ``pin`` may be a card PIN."""
    if not (isinstance(pin, str) and pin.isascii() and pin.isdigit()):
        raise InvalidInput("The card PIN must be digits only.", field="pin")
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
