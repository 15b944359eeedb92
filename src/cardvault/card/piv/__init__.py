"""The PIV card application (NIST SP 800-73-4): a pure core the service runs per card.

``process(state, apdu, ports)`` answers one APDU; ``state`` is kept by the caller between
APDUs (``dump_state``/``load_state``); ``ports`` hold the card's secrets (``CardPorts``).
See docs/protocols/piv-applet.md.
"""

from cardvault.card.piv.applet import LABEL, blank_card, process
from cardvault.card.piv.constants import (
    ATR,
    DEFAULT_MANAGEMENT_KEY,
    PIV_AID,
    Algorithm,
    Ins,
    ObjectId,
    PinRef,
    Slot,
)
from cardvault.card.piv.ports import CardPorts, WrongReferenceData
from cardvault.card.piv.state import PivState, StateMalformed, dump_state, load_state

__all__ = [
    "ATR",
    "DEFAULT_MANAGEMENT_KEY",
    "LABEL",
    "PIV_AID",
    "Algorithm",
    "CardPorts",
    "Ins",
    "ObjectId",
    "PinRef",
    "PivState",
    "Slot",
    "StateMalformed",
    "WrongReferenceData",
    "blank_card",
    "dump_state",
    "load_state",
    "process",
]
