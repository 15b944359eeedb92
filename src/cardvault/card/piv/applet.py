"""The PIV card application (NIST SP 800-73-4) as a pure function of state and APDU.

``process(state, apdu, ports) -> (state, response)`` never raises for anything a client can
send: a malformed or refused command is answered with its status word and leaves the state
consistent. It handles what sits between the instructions -- the CLA byte, command chaining
(CLA 10), response chaining (61xx + GET RESPONSE) and what a new command cancels -- and hands
each complete command to the handler for its instruction.
"""

from __future__ import annotations

from dataclasses import replace

from cardvault.card.apdu import CardError, CommandApdu, Sw, parse_command, response
from cardvault.card.piv import objects
from cardvault.card.piv.asymmetric import GENERATABLE, general_authenticate, generate_key_pair
from cardvault.card.piv.constants import (
    PIV_AID,
    PIV_RID,
    YUBICO_OTP_AID,
    Algorithm,
    Ins,
    ObjectId,
    Slot,
)
from cardvault.card.piv.data import get_data, get_otp_serial, get_serial, get_version, put_data
from cardvault.card.piv.handlers import Handler, Outcome
from cardvault.card.piv.ports import CardPorts
from cardvault.card.piv.state import MAX_CHAIN_BYTES, PendingChain, PivState
from cardvault.card.piv.verification import (
    change_reference_data,
    get_challenge,
    reset_retry_counter,
    set_management_key,
    verify,
)
from cardvault.errors import InvalidInput

__all__ = ["LABEL", "blank_card", "process"]

LABEL = "cardvault PIV"
_CHAINING = 0x10
_SECURE_MESSAGING = 0x0C


def process(state: PivState, apdu: bytes, ports: CardPorts) -> tuple[PivState, bytes]:
    """Answer one command APDU; returns the next state and the response APDU."""
    try:
        command = parse_command(apdu)
        _check_class(command.cla)
        if command.ins == Ins.GET_RESPONSE:
            return _get_response(replace(state, pending_chain=None), command)
        state = replace(state, pending_response=b"")
        state, complete = _assemble(state, command)
        if complete is None:
            return state, response()
        outcome = _dispatch(state, complete, ports)
    except CardError as err:
        return _cancelled(state), response(sw=err.sw)
    except InvalidInput:  # malformed TLV, or input a port's key cannot take (RSA block >= n)
        return _cancelled(state), response(sw=Sw.INCORRECT_DATA)
    next_state = outcome.state if _keeps_challenge(command) else _without_challenge(outcome.state)
    return _deliver(next_state, outcome, command.max_response)


def _check_class(cla: int) -> None:
    if cla & ~_CHAINING == 0:
        return
    if cla & 0xE0 == 0 and cla & _SECURE_MESSAGING:
        raise CardError(Sw.SECURE_MESSAGING_UNSUPPORTED)
    raise CardError(Sw.CLA_NOT_SUPPORTED)


def _assemble(state: PivState, command: CommandApdu) -> tuple[PivState, CommandApdu | None]:
    """Collect a command chain; a command that does not continue it starts afresh."""
    pending = state.pending_chain
    if pending is not None and (pending.ins, pending.p1, pending.p2) != (
        command.ins,
        command.p1,
        command.p2,
    ):
        pending = None
    data = (pending.data if pending is not None else b"") + command.data
    if len(data) > MAX_CHAIN_BYTES:
        raise CardError(Sw.WRONG_LENGTH, "the command chain is too long")
    if command.chained:
        chain = PendingChain(ins=command.ins, p1=command.p1, p2=command.p2, data=data)
        return replace(state, pending_chain=chain), None
    complete = replace(command, cla=command.cla & ~_CHAINING, data=data)
    return replace(state, pending_chain=None), complete


def _dispatch(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    handler = _HANDLERS.get(command.ins)
    if handler is None:
        raise CardError(Sw.INS_NOT_SUPPORTED)
    return handler(state, command, ports)


def _keeps_challenge(command: CommandApdu) -> bool:
    return command.ins == Ins.GENERAL_AUTHENTICATE and command.p2 == Slot.CARD_MANAGEMENT


def _without_challenge(state: PivState) -> PivState:
    return state if state.challenge is None else replace(state, challenge=None)


def _cancelled(state: PivState) -> PivState:
    """A refused command cancels whatever was in flight; what was proved stays proved."""
    return replace(state, pending_response=b"", pending_chain=None, challenge=None)


def _deliver(state: PivState, outcome: Outcome, limit: int) -> tuple[PivState, bytes]:
    """Send what fits the client's Le; keep the rest for GET RESPONSE (61xx)."""
    if len(outcome.data) <= limit:
        return state, response(outcome.data, outcome.sw)
    head, rest = outcome.data[:limit], outcome.data[limit:]
    return replace(state, pending_response=rest), response(head, Sw.remaining(len(rest)))


def _get_response(state: PivState, command: CommandApdu) -> tuple[PivState, bytes]:
    if (command.p1, command.p2) != (0, 0):
        raise CardError(Sw.INCORRECT_P1P2)
    if not state.pending_response:
        raise CardError(Sw.CONDITIONS_NOT_SATISFIED, "no response data is waiting")
    waiting = Outcome(state=state, data=state.pending_response)
    return _deliver(replace(state, pending_response=b""), waiting, command.max_response)


def select(state: PivState, command: CommandApdu, ports: CardPorts) -> Outcome:
    """SELECT by AID (prefix of the PIV AID, at least the RID). Any other application is not
    on this card: 6A82, and PIV stays selected, as OpenSC's probing drivers require -- but for
    the YubiKey OTP application, whose one request this card answers (``9000``, no data)."""
    if command.p1 != 0x04:
        raise CardError(Sw.INCORRECT_P1P2)
    aid = command.data
    if aid == YUBICO_OTP_AID:  # only for the serial request (data.py); PIV stays current
        return Outcome(state=state)
    if len(aid) < len(PIV_RID) or not PIV_AID.startswith(aid):
        raise CardError(Sw.FILE_NOT_FOUND, "no such application")
    if command.p2 == 0x0C:
        return Outcome(state=state)
    supported = (Algorithm.TDES, Algorithm.AES128, Algorithm.AES192, Algorithm.AES256)
    template = objects.application_property_template(LABEL, (*supported, *GENERATABLE))
    return Outcome(state=state, data=template)


_HANDLERS: dict[int, Handler] = {
    Ins.SELECT: select,
    Ins.GET_DATA: get_data,
    Ins.PUT_DATA: put_data,
    Ins.VERIFY: verify,
    Ins.CHANGE_REFERENCE_DATA: change_reference_data,
    Ins.RESET_RETRY_COUNTER: reset_retry_counter,
    Ins.GENERAL_AUTHENTICATE: general_authenticate,
    Ins.GET_CHALLENGE: get_challenge,
    Ins.GENERATE_ASYMMETRIC_KEY_PAIR: generate_key_pair,
    Ins.GET_VERSION: get_version,
    Ins.GET_SERIAL: get_serial,
    Ins.OTP_REQUEST: get_otp_serial,
    Ins.SET_MANAGEMENT_KEY: set_management_key,
}


def blank_card(*, serial: int, guid: bytes) -> PivState:
    """A blank card as it leaves the factory: CHUID and CCC, default management key, no keys.

    ``guid`` (16 random bytes) names the card in the CHUID and the CCC."""
    state = PivState(serial=serial)
    state = state.with_object(ObjectId.CHUID, objects.chuid(guid=guid))
    ccc = objects.card_capability_container(guid[:14])
    return state.with_object(ObjectId.CARD_CAPABILITY_CONTAINER, ccc)
