"""What an APDU leaves in the audit trail (DESIGN §3.7): every use of a key, every wrong PIN
or PUK, every change to the card -- never a PIN, a key or the data that was signed (only its
SHA-256). Written in the same transaction as the new state, so a card operation whose event
cannot be written does not happen.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from cardvault.card.apdu import Sw
from cardvault.card.piv import Ins, PinRef, PivState, Slot
from cardvault.domain.audit_actions import AuditAction
from cardvault.json_types import JsonObject
from cardvault.services.audit import trail as audit
from cardvault.services.piv.ports import Effects, key_role
from cardvault.services.system.runtime import Actor, Runtime

__all__ = ["ApduFacts", "Event", "apdu_events", "record_apdu"]

_OPERATION_ACTIONS = {
    "sign": AuditAction.CARD_SIGNED,
    "decrypt": AuditAction.CARD_DECRYPTED,
    "ecdh": AuditAction.CARD_KEY_AGREED,
}
#: each action spelled out, so that the audit phrase catalogue's test finds it
_CHANGED_ACTIONS = {
    PinRef.GLOBAL_PIN: AuditAction.PIV_GLOBAL_PIN_CHANGED,
    PinRef.PIV_PIN: AuditAction.PIV_PIV_PIN_CHANGED,
    PinRef.PUK: AuditAction.PIV_PUK_CHANGED,
}
_REFUSALS = {
    Sw.SECURITY_STATUS_NOT_SATISFIED: "card PIN not verified",
    Sw.AUTH_METHOD_BLOCKED: "card PIN blocked",
}


@dataclass(frozen=True, kw_only=True)
class ApduFacts:
    """The APDU's header, its status word and the states around it."""

    cla: int
    ins: int
    p2: int
    sw: int
    before: PivState
    after: PivState
    session_id: str
    link_id: str
    mode: str


def apdu_events(facts: ApduFacts, effects: Effects) -> list[Event]:
    """The events an APDU leaves; most leave none (then the relay commits without the ORM)."""
    return [
        *_key_uses(facts, effects),
        *_refusal(facts),
        *_reference_events(facts, effects),
        *_administration(facts, effects),
    ]


def record_apdu(
    session: Session,
    rt: Runtime,
    actor: Actor,
    card: audit.CardRef,
    organisation_id: str,
    facts: ApduFacts,
    events: list[Event],
) -> None:
    """Card use goes to the chain of the organisation the session is in (DESIGN §3.6)."""
    for action, outcome, reason, details in events:
        audit.record_for_card(
            session,
            rt,
            actor,
            card,
            action=action,
            outcome=outcome,
            reason=reason,
            organisation_id=organisation_id,
            details={
                "channel": "pcsc",
                "mode": facts.mode,
                "session": facts.session_id,
                "link": facts.link_id,
                **details,
            },
        )


Event = tuple[AuditAction, str, str | None, JsonObject]


def _key_uses(facts: ApduFacts, effects: Effects) -> list[Event]:
    return [
        (
            _OPERATION_ACTIONS[use.operation],
            "success",
            None,
            {
                "slot": f"{int(use.slot):02x}",
                "key": key_role(use.slot),
                "algorithm": use.algorithm.name,
                "input_sha256": use.input_sha256,
            },
        )
        for use in effects.key_uses
    ]


def _refusal(facts: ApduFacts) -> list[Event]:
    """A key the applet refused to use (no PIN, PIN blocked): the failed use is audited too."""
    chained = bool(facts.cla & 0x10)
    if facts.ins != Ins.GENERAL_AUTHENTICATE or chained or facts.sw not in _REFUSALS:
        return []
    if facts.p2 == Slot.CARD_MANAGEMENT:
        return [(AuditAction.PIV_MANAGEMENT_AUTHENTICATED, "failure", "wrong management key", {})]
    return [
        (AuditAction.CARD_SIGNED, "failure", _REFUSALS[Sw(facts.sw)], {"slot": f"{facts.p2:02x}"})
    ]


def _reference_events(facts: ApduFacts, effects: Effects) -> list[Event]:
    events: list[Event] = []
    for reference, right in effects.checks:
        name = "PUK" if reference is PinRef.PUK else "card PIN"
        counter = facts.after.puk_tries if reference is PinRef.PUK else facts.after.pin_tries
        if not right:
            details: JsonObject = {"reference": name, "attempts_left": counter.left}
            events.append((AuditAction.PIV_VERIFY, "failure", f"incorrect {name}", details))
            if counter.blocked:
                events.append(
                    (AuditAction.PIV_BLOCKED, "success", f"{name} blocked", {"reference": name})
                )
    for reference in effects.changed:
        unblock = facts.ins == Ins.RESET_RETRY_COUNTER
        action = AuditAction.PIV_PIN_RESET if unblock else _CHANGED_ACTIONS[reference]
        events.append((action, "success", None, {}))
    return events


def _administration(facts: ApduFacts, effects: Effects) -> list[Event]:
    events: list[Event] = []
    was = facts.before.security.management_authenticated
    if facts.after.security.management_authenticated and not was:
        events.append((AuditAction.PIV_MANAGEMENT_AUTHENTICATED, "success", None, {}))
    if effects.management_changed:
        name = facts.after.management_algorithm.name
        events.append(
            (AuditAction.PIV_MANAGEMENT_KEY_CHANGED, "success", None, {"algorithm": name})
        )
    for slot, generated in effects.generated:
        generated_key: JsonObject = {"slot": f"{int(slot):02x}", "algorithm": generated.name}
        events.append((AuditAction.PIV_KEY_GENERATED, "success", None, generated_key))
    before, after = dict(facts.before.objects), dict(facts.after.objects)
    for tag in sorted(before.keys() | after.keys()):
        if before.get(tag) != after.get(tag):
            size = len(after.get(tag, b""))
            events.append(
                (AuditAction.PIV_OBJECT_WRITTEN, "success", None, {"tag": f"{tag:x}", "size": size})
            )
    return events
