"""What the agent does, independent of how it is asked (command line, tests)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from cardvault.clients.agent import push
from cardvault.clients.agent.api import AgentError, CardvaultApi
from cardvault.clients.agent.state import AgentState
from cardvault.crypto.rp_challenge import challenge_digest

Prompt = Callable[[str], str]


@dataclass(frozen=True, kw_only=True)
class LoginInput:
    identifier_kind: str
    identifier: str
    passcode: str
    organisation: str | None = None
    client_name: str | None = None
    purpose: str = "holder"


def login(
    api: CardvaultApi,
    server: str,
    data: LoginInput,
    *,
    totp: str | None,
    ask_code: Prompt,
    show_number: Callable[[str], None] | None = None,
    note: Callable[[str], None] | None = None,
) -> AgentState:
    """Passcode, then the second factor: push to the paired phone, or a one-time code."""
    claims: dict[str, Any] = {
        "identifier": {"kind": data.identifier_kind, "value": data.identifier},
        "passcode": data.passcode,
        "purpose": data.purpose,
        "organisation": data.organisation,
        "client_name": data.client_name,
    }
    result = api.sealed_call("/api/v1/auth/login", claims)
    sk = result["session_key"]
    offers = {f.get("method"): f for f in result.get("second_factors", [])}
    if not offers:
        error = result.get("factor_error") or {}
        raise AgentError(error.get("message", "No second factor is available."))
    phone = offers.get("authenticator")
    if phone and not totp and phone.get("connected"):
        session = push.try_push(
            api,
            result["transaction_id"],
            show_number or (lambda _n: None),
            note or (lambda _m: None),
        )
        if session is not None:
            return _state(server, session, sk, data.purpose)
    if not phone and "totp" not in offers:
        raise AgentError(f"This agent cannot use the second factor(s) offered: {list(offers)}.")
    code = totp or ask_code("Code from your authenticator app")
    session = _code_factor(api, result["transaction_id"], offers, code)
    return _state(server, session, sk, data.purpose)


def _code_factor(api: CardvaultApi, txn: str, offers: dict[str, Any], code: str) -> dict[str, Any]:
    """The one-time code, for whichever code factor it belongs to (the paired phone's own,
    or a separately added authenticator app): the service tries both, and one code is one
    try toward the card's second-factor lock."""
    if not any(m in offers for m in ("authenticator", "totp")):
        raise AgentError("No one-time code method is available.")
    return api.sealed_call(
        "/api/v1/auth/factor",
        {"transaction_id": txn, "response": {"method": "code", "code": code}},
    )


def qr_login(
    api: CardvaultApi, server: str, *, client_name: str | None, show_qr: Callable[[str], None]
) -> AgentState:
    """Sign in by scanning the QR code this PC shows with the paired phone."""
    session = push.qr_login(api, client_name=client_name, show_qr=show_qr)
    return _state(server, session, session["session_key"])


def _state(server: str, session: dict[str, Any], sk: str, purpose: str = "holder") -> AgentState:
    return AgentState(
        server=server,
        token=session["token"],
        session_key=sk,
        card_serial=session["card_serial"],
        organisation=session["organisation"],
        expires_at=session["expires_at"],
        purpose=purpose,
        channel_id=session.get("channel_id"),
        channel_key=session.get("channel_key"),
    )


ISSUING_ROLES = ("ra_manager", "ra_agent")


def ra_roles(api: CardvaultApi, state: AgentState) -> list[dict[str, str]]:
    items: list[dict[str, str]] = api.get("/api/v1/ra/roles", token=state.token)["items"]
    return items


def select_role(api: CardvaultApi, state: AgentState, organisation: str, role: str) -> AgentState:
    """Act in one organisation under one of your RA roles there (the RA API's role choice)."""
    if state.purpose != "ra":
        raise AgentError(
            "RA roles need an RA session.", remedy="Sign in with `cardvault-agent login --ra`."
        )
    chosen = api.post(
        "/api/v1/ra/role", {"organisation": organisation, "role": role}, token=state.token
    )
    state.acting_organisation, state.acting_role = chosen["organisation"], chosen["role"]
    return state


def issuing_role(api: CardvaultApi, state: AgentState, organisation: str) -> AgentState:
    """Make sure the RA acts in ``organisation`` under a role that may issue cards."""
    wanted = organisation.strip().upper()
    if state.acting_organisation == wanted and state.acting_role in ISSUING_ROLES:
        return state
    held = [r["role"] for r in ra_roles(api, state) if r["organisation"] == wanted]
    usable = [role for role in ISSUING_ROLES if role in held]
    if not usable:
        raise AgentError(f"You have no RA role in {wanted} that may issue cards.")
    return select_role(api, state, wanted, usable[0])


def sign(
    api: CardvaultApi,
    state: AgentState,
    *,
    digest: bytes,
    key: str,
    passcode: str | None = None,
    scheme: str | None = None,
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "token": state.token,
        "session_key": state.session_key,
        "key": key,
        "digest": base64.b64encode(digest).decode(),
        "hash": "sha256",
    }
    if passcode is not None:
        claims["passcode"] = passcode
    if scheme:
        claims["scheme"] = scheme
    api.use_channel(state.channel_id, state.channel_key)
    return api.session_call("/api/v1/card/sign", claims)


def authenticate(
    api: CardvaultApi, state: AgentState, rp_url: str, rp_client: httpx.Client
) -> dict[str, Any]:
    """Challenge from the relying party → signature by the card → ticket from the RP."""
    origin = _origin(rp_url)
    try:
        challenge = rp_client.get(rp_url).raise_for_status().json()
        digest = challenge_digest(origin, base64.b64decode(challenge["challenge"]))
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise AgentError(f"The relying party at {rp_url} did not give a challenge: {exc}.") from exc
    signed = sign(api, state, digest=digest, key="authentication")
    try:
        response = rp_client.post(
            rp_url,
            json={
                "challenge_id": challenge["challenge_id"],
                "certificate": signed["certificate"],
                "signature": signed["signature"],
                "scheme": signed["scheme"],
            },
        )
        if response.status_code >= 400:
            raise AgentError(f"The relying party refused the sign-in: {_title(response)}")
        result = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise AgentError(f"The relying party at {rp_url} did not answer: {exc}.") from exc
    if not isinstance(result, dict):
        raise AgentError(f"The relying party at {rp_url} answered something else than a ticket.")
    return result


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise AgentError(f"{url} is not an http(s) address.")
    return f"{parts.scheme}://{parts.netloc}"


def _title(response: httpx.Response) -> str:
    try:
        return str(response.json().get("title") or response.status_code)
    except ValueError:
        return str(response.status_code)


def status(api: CardvaultApi, state: AgentState) -> dict[str, Any]:
    return api.get("/api/v1/session", token=state.token)


def logout(api: CardvaultApi, state: AgentState) -> None:
    api.delete("/api/v1/session", token=state.token)
