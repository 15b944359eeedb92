"""Signing in with a FIDO2 security key or an HR card (DESIGN §3.2, the methods table).

* Security key, no identifier: the key comes first (it names the card with a
  discoverable credential), then the passcode. The service hands back a short-lived
  proof for the verified key, which goes with the passcode in the encrypted sign-in.
* Security key with an email address or AD account: the passcode comes first, then the
  key the service offers for that card. (Asking the service for a card's keys before
  the passcode would tell anyone which addresses have keys.)
* HR card: the card's UID (read from a reader, or typed by a keyboard-wedge reader),
  then the passcode.

The user interface is a set of callables, so that the command line, a desktop dialog
and the tests drive the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fido2.ctap import CtapDevice

from cardvault.clients.agent import fido2_key
from cardvault.clients.agent.core import origin_of
from cardvault.clients.agent.state import AgentState
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.clients.common.replies import JsonObject, Reply

SIGN_IN_FAILED = "sign_in_failed"


@dataclass(frozen=True, kw_only=True)
class KeyPrompts:
    """What the agent asks of the person, in the order it asks it."""

    device: Callable[[], CtapDevice]  # "insert your security key" until one is there
    touch: Callable[[], None]
    pin: Callable[[], str] | None
    passcode: Callable[[], str]
    key_accepted: Callable[[Reply], None] | None = None


@dataclass(frozen=True, kw_only=True)
class Who:
    kind: str | None = None  # "email" or "ad_account"; None: the key names the card
    value: str | None = None
    organisation: str | None = None
    client_name: str | None = None
    purpose: str = "holder"


def login_with_key(api: CardvaultApi, server: str, who: Who, ui: KeyPrompts) -> AgentState:
    if who.kind is None:
        return _key_first(api, server, who, ui)
    return _passcode_first(api, server, who, ui)


def _key_first(api: CardvaultApi, server: str, who: Who, ui: KeyPrompts) -> AgentState:
    device = ui.device()  # before the challenge, which has a deadline
    begun = api.post("/api/v1/webauthn/assertion/begin", {"organisation": who.organisation})
    credential = _use_key(server, ui, {"publicKey": begun.obj("publicKey").data}, device)
    verified = api.post(
        "/api/v1/webauthn/assertion/complete",
        {"ceremony_id": begun.text("ceremony_id"), "credential": credential},
    )
    if ui.key_accepted is not None:
        ui.key_accepted(verified)
    proof = verified.text("proof")
    result = _sign_in(
        api,
        who,
        {"kind": "fido2", "value": proof},
        ui.passcode(),
        {"method": "fido2", "proof": proof},
        organisation=verified.text("organisation"),
    )
    return _finished(server, result, "the security key", who.purpose)


def _passcode_first(api: CardvaultApi, server: str, who: Who, ui: KeyPrompts) -> AgentState:
    result = _sign_in(api, who, {"kind": who.kind, "value": who.value}, ui.passcode(), None)
    session = result.optional_obj("session")
    if session is not None:
        return AgentState.opened(server, session, result.text("session_key"), who.purpose)
    offers = result.objects("second_factors")
    offer = next((f for f in offers if f.optional_text("method") == "fido2"), None)
    if offer is None:
        error = result.optional_obj("factor_error") or Reply({})
        raise ServiceError(
            error.optional_text("message") or "No security key is registered for this card here.",
            remedy="Sign in another way, or ask your RA to register your security key.",
            problem=error.optional_text("code") or "no_security_key",
        )
    credential = _use_key(server, ui, offer.data, ui.device())
    session = api.sealed_call(
        "/api/v1/auth/factor",
        {
            "transaction_id": result.text("transaction_id"),
            "response": {"method": "fido2", "credential": credential},
        },
    )
    return AgentState.opened(server, session, result.text("session_key"), who.purpose)


def _use_key(server: str, ui: KeyPrompts, options: JsonObject, device: CtapDevice) -> JsonObject:
    return fido2_key.get_assertion(
        device,
        origin=origin_of(server),
        request_options=options,
        pin=ui.pin,
        on_touch=ui.touch,
    )


def login_with_hr_card(
    api: CardvaultApi, server: str, who: Who, uid: str, passcode: Callable[[], str]
) -> AgentState:
    """The UID names the card; the passcode opens it; the same tap is the second step."""
    try:
        result = _sign_in(
            api,
            who,
            {"kind": "hr_card", "value": uid},
            passcode(),
            {"method": "hr_card", "uid": uid},
            organisation=who.organisation,
        )
    except ServiceError as exc:
        if exc.problem != SIGN_IN_FAILED:
            raise
        raise ServiceError(
            f"{exc.message} (HR card {uid})",
            remedy="Check your passcode. If this HR card is new, or you belong to several "
            "organisations, ask your RA to associate it with your card there "
            "(or give --organisation).",
            problem=SIGN_IN_FAILED,
            status=exc.status,
        ) from None
    return _finished(server, result, "the HR card", who.purpose)


def _sign_in(
    api: CardvaultApi,
    who: Who,
    identifier: JsonObject,
    passcode: str,
    second_factor: JsonObject | None,
    *,
    organisation: str | None = None,
) -> Reply:
    claims: JsonObject = {
        "identifier": identifier,
        "passcode": passcode,
        "purpose": who.purpose,
        "organisation": organisation or who.organisation,
        "client_name": who.client_name,
    }
    if second_factor is not None:
        claims["second_factor"] = second_factor
    return api.sealed_call("/api/v1/auth/login", claims)


def _finished(server: str, result: Reply, what: str, purpose: str) -> AgentState:
    session = result.optional_obj("session")
    if session is not None:
        return AgentState.opened(server, session, result.text("session_key"), purpose)
    error = result.optional_obj("factor_error") or Reply({})
    raise ServiceError(
        error.optional_text("message") or f"The sign-in with {what} did not finish.",
        problem=error.optional_text("code"),
    )
