"""What the agent does, independent of how it is asked (command line, tests)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from cardvault.clients.agent import push
from cardvault.clients.agent.state import AgentState
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.clients.common.replies import JsonObject, JsonValue, Reply
from cardvault.crypto.rp_challenge import challenge_digest

Prompt = Callable[[str], str]
#: asked for the code of one of (code, name) when several organisations would admit you
OrganisationPrompt = Callable[[list[tuple[str, str]]], str]


@dataclass(frozen=True, kw_only=True)
class LoginInput:
    identifier_kind: str
    identifier: str
    passcode: str
    organisation: str | None = None
    client_name: str | None = None
    purpose: str = "holder"


#: why the agent asks for a code although a phone is paired: it holds no connection to the
#: service now (switched off, or the service's push channel, Redis, is down)
PHONE_UNREACHABLE = (
    "Your paired phone cannot be reached for a push right now; "
    "enter the one-time code from the app instead."
)


def login(
    api: CardvaultApi,
    server: str,
    data: LoginInput,
    *,
    totp: str | None,
    ask_code: Prompt,
    show_number: Callable[[str], None] | None = None,
    note: Callable[[str], None] | None = None,
    choose_organisation: OrganisationPrompt | None = None,
) -> AgentState:
    """Passcode, then (when the service lists several organisations) the organisation,
    then the second factor: push to the paired phone, or a one-time code."""
    claims: JsonObject = {
        "identifier": {"kind": data.identifier_kind, "value": data.identifier},
        "passcode": data.passcode,
        "purpose": data.purpose,
        "organisation": data.organisation,
        "client_name": data.client_name,
    }
    result = api.sealed_call("/api/v1/auth/login", claims)
    sk = result.text("session_key")
    result = _organisation(api, result, choose_organisation)
    offers = {f.optional_text("method"): f for f in result.objects("second_factors")}
    if not offers:
        error = result.optional_obj("factor_error") or Reply({})
        raise ServiceError(error.optional_text("message") or "No second factor is available.")
    txn = result.text("transaction_id")
    phone = offers.get("authenticator")
    if phone and not totp and phone.flag("connected"):
        session = push.try_push(
            api, txn, show_number or (lambda _n: None), note or (lambda _m: None)
        )
        if session is not None:
            return AgentState.opened(server, session, sk, data.purpose)
    if phone and not totp and not phone.flag("connected") and note is not None:
        note(PHONE_UNREACHABLE)
    if not phone and "totp" not in offers:
        raise ServiceError(f"This agent cannot use the second factor(s) offered: {list(offers)}.")
    code = totp or ask_code("Code from your authenticator app")
    session = api.sealed_call(
        "/api/v1/auth/factor",
        # the code, for whichever code factor it belongs to (the paired phone's own, or a
        # separately added authenticator app): the service tries both, and one code is one
        # try toward the card's second-factor lock
        {"transaction_id": txn, "response": {"method": "code", "code": code}},
    )
    return AgentState.opened(server, session, sk, data.purpose)


def _organisation(api: CardvaultApi, result: Reply, choose: OrganisationPrompt | None) -> Reply:
    """The second factors offered: at once, or after choosing the organisation when the
    service lists several (an email address names none, and several admit you)."""
    listed = [(o.text("code"), o.text("name")) for o in result.objects("organisations")]
    if not listed:
        return result
    if choose is None:
        codes = ", ".join(code for code, _name in listed)
        raise ServiceError(
            f"You can sign in to several organisations ({codes}).",
            remedy="Give the one you want with --organisation.",
        )
    return api.sealed_call(
        "/api/v1/auth/organisation",
        {"transaction_id": result.text("transaction_id"), "organisation": choose(listed)},
    )


def qr_login(
    api: CardvaultApi, server: str, *, client_name: str | None, show_qr: Callable[[str], None]
) -> AgentState:
    """Sign in by scanning the QR code this PC shows with the paired phone."""
    session = push.qr_login(api, client_name=client_name, show_qr=show_qr)
    return AgentState.opened(server, session, session.text("session_key"))


ISSUING_ROLES = ("ra_manager", "ra_agent")


@dataclass(frozen=True)
class RaRole:
    organisation: str
    role: str


def ra_roles(api: CardvaultApi, state: AgentState) -> list[RaRole]:
    items = api.get("/api/v1/ra/roles", token=state.token).objects("items")
    return [RaRole(r.text("organisation"), r.text("role")) for r in items]


def select_role(api: CardvaultApi, state: AgentState, organisation: str, role: str) -> AgentState:
    """Act in one organisation under one of your RA roles there (the RA API's role choice)."""
    if state.purpose != "ra":
        raise ServiceError(
            "RA roles need an RA session.", remedy="Sign in with `cardvault-agent login --ra`."
        )
    chosen = api.post(
        "/api/v1/ra/role", {"organisation": organisation, "role": role}, token=state.token
    )
    state.acting_organisation, state.acting_role = chosen.text("organisation"), chosen.text("role")
    return state


def issuing_role(api: CardvaultApi, state: AgentState, organisation: str) -> AgentState:
    """Make sure the RA acts in ``organisation`` under a role that may issue cards."""
    wanted = organisation.strip().upper()
    if state.acting_organisation == wanted and state.acting_role in ISSUING_ROLES:
        return state
    held = [r.role for r in ra_roles(api, state) if r.organisation == wanted]
    usable = [role for role in ISSUING_ROLES if role in held]
    if not usable:
        raise ServiceError(f"You have no RA role in {wanted} that may issue cards.")
    return select_role(api, state, wanted, usable[0])


def sign(
    api: CardvaultApi,
    state: AgentState,
    *,
    digest: bytes,
    key: str,
    passcode: str | None = None,
    scheme: str | None = None,
) -> Reply:
    claims: JsonObject = {
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
) -> JsonObject:
    """Challenge from the relying party → signature by the card → ticket from the RP."""
    origin = origin_of(rp_url)
    try:
        challenge = rp_client.get(rp_url).raise_for_status().json()
        digest = challenge_digest(origin, base64.b64decode(challenge["challenge"]))
    except (httpx.HTTPError, KeyError, ValueError, TypeError) as exc:
        raise ServiceError(
            f"The relying party at {rp_url} did not give a challenge: {exc}."
        ) from exc
    signed = sign(api, state, digest=digest, key="authentication")
    try:
        response = rp_client.post(
            rp_url,
            json={
                "challenge_id": challenge["challenge_id"],
                "certificate": signed.text("certificate"),
                "signature": signed.text("signature"),
                "scheme": signed.text("scheme"),
            },
        )
        if response.status_code >= 400:
            raise ServiceError(f"The relying party refused the sign-in: {_title(response)}")
        result: JsonValue = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServiceError(f"The relying party at {rp_url} did not answer: {exc}.") from exc
    if not isinstance(result, dict):
        raise ServiceError(f"The relying party at {rp_url} answered something else than a ticket.")
    return result


def origin_of(url: str) -> str:
    """The web origin of an http(s) address (what a relying party or a security key signs)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ServiceError(f"{url} is not an http(s) address.")
    return f"{parts.scheme}://{parts.netloc}"


def _title(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("title") or response.status_code)
    except ValueError:
        return str(response.status_code)


def status(api: CardvaultApi, state: AgentState) -> Reply:
    return api.get("/api/v1/session", token=state.token)


def logout(api: CardvaultApi, state: AgentState) -> None:
    api.delete("/api/v1/session", token=state.token)
