"""What the app does, independent of how it is asked (command line, tests)."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp

from cardvault.clients.authenticator.api import DeviceApi
from cardvault.clients.authenticator.state import DeviceState
from cardvault.clients.common.api import ServiceError
from cardvault.clients.common.replies import JsonObject, Reply
from cardvault.crypto import device as dcrypto
from cardvault.errors import InvalidInput

# --- QR codes and URIs ------------------------------------------------------------------------


def decode_qr_image(path: Path) -> str:
    """The text of the QR code in an image, decoded by zbarimg (Debian ``zbar-tools``)."""
    tool = shutil.which("zbarimg")
    if tool is None:
        raise ServiceError(
            "zbarimg is not installed.", remedy="Install it: apt-get install zbar-tools."
        )
    if not path.is_file():
        raise InvalidInput(f"There is no image at {path}.")
    done = subprocess.run(
        [tool, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    text = done.stdout.strip()
    if done.returncode != 0 or not text:
        raise InvalidInput(f"No QR code could be read from {path}.")
    return text.splitlines()[0]


def parse_uri(uri: str, kind: str) -> dict[str, str]:
    """``cardvault://pair?…`` or ``cardvault://login?…`` into its fields (checked)."""
    parts = urlsplit(uri.strip())
    if parts.scheme != "cardvault" or parts.netloc != kind:
        raise InvalidInput(f"This is not a cardvault {kind} code.")
    fields = {k: v[0] for k, v in parse_qs(parts.query).items()}
    need = {"pair": ("server", "token"), "login": ("server", "request", "code")}[kind]
    if fields.get("v") != "1" or any(not fields.get(n) for n in need):
        raise InvalidInput(f"This cardvault {kind} code is incomplete or from a newer version.")
    if not fields["server"].startswith("https://"):
        raise InvalidInput("The service address in the code must be https://.")
    return fields


# --- pairing ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PairInput:
    uri: str
    passcode: str
    name: str
    platform: str
    application: str = "authenticator"
    biometric: bool = False


def pair(api: DeviceApi, fields: dict[str, str], data: PairInput) -> DeviceState:
    """Make the device key, prove it, and register with the passcode; returns the state."""
    key = dcrypto.DeviceKey.generate()
    public = dcrypto.b64url(key.public_der())
    proof = key.sign(dcrypto.pairing_signing_input(token=fields["token"], public_key=public))
    secret = secrets.token_bytes(32) if data.biometric else None
    claims: JsonObject = {
        "token": fields["token"],
        "passcode": data.passcode,
        "public_key": public,
        "proof": dcrypto.b64url(proof),
        "name": data.name,
        "platform": data.platform,
        "application": data.application,
    }
    if secret is not None:
        claims["device_secret"] = dcrypto.b64url(secret)
    api.kid = fields.get("kid") or None
    result = api.sealed_call("/api/v1/device/pair", claims)
    return DeviceState(
        server=fields["server"],
        kid=api.kid or "",
        device_id=result.text("device_id"),
        device_key_pem=key.to_pem().decode(),
        totp_secret=result.obj("totp").text("secret"),
        application=result.text("application"),
        name=data.name,
        card_serial=result.text("card_serial"),
        organisation=result.text("organisation"),
        holder_name=result.text("holder_name"),
        device_secret=dcrypto.b64url(secret) if secret is not None else None,
    )


def totp_code(state: DeviceState, at: float | None = None) -> str:
    return pyotp.TOTP(state.totp_secret).at(at if at is not None else time.time())


# --- push challenges --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Choice:
    decision: str  # approve, deny, not_me
    number: str = ""


Chooser = Callable[[Reply], Choice | None]
Say = Callable[[str], None]


def answer(api: DeviceApi, challenge: Reply, choice: Choice) -> Reply:
    assert api.key is not None
    challenge_id = challenge.text("id")
    message = dcrypto.answer_signing_input(
        challenge_id=challenge_id, number=choice.number, decision=choice.decision
    )
    body: JsonObject = {
        "number": choice.number,
        "decision": choice.decision,
        "signature": dcrypto.b64url(api.key.sign(message)),
    }
    return api.signed("POST", f"/api/v1/device/challenges/{challenge_id}/answer", body)


def describe(challenge: Reply) -> str:
    created = challenge.optional_text("created_at") or ""
    # a passcode reset says so (issue 21); older services send no title: a sign-in
    what = (
        "Reset your passcode: request"
        if challenge.optional_text("request") == "passcode_reset"
        else "Sign-in request"
    )
    return (
        f"{what} for {challenge.optional_text('organisation_name')} from "
        f"{challenge.optional_text('client_name') or 'an unnamed computer'} "
        f"({challenge.optional_text('client_address') or 'unknown address'}) at "
        f"{created[:19].replace('T', ' ')} UTC"
    )


def closed_note(event: Reply) -> str:
    """What the phone says when a request it shows is closed."""
    challenge_id = event.optional_text("challenge_id")
    if event.flag("answered_elsewhere"):
        return f"Request {challenge_id} was answered on another device."
    return f"Request {challenge_id} closed ({event.optional_text('status')})."


def listen(api: DeviceApi, choose: Chooser, say: Say, *, once: bool) -> int:
    """Answer challenges as they arrive; returns how many were answered."""
    answered = 0
    for event, data in api.events():
        if event == "hello":
            say("Connected; waiting for sign-in requests.")
        elif event == "revoked":
            raise ServiceError(
                "This device has been removed from the card; it can no longer approve sign-ins.",
                remedy="Ask your RA to pair the app again if this was not intended.",
                revoked=True,
            )
        elif event == "closed":
            say(closed_note(data))
        elif event == "challenge":
            challenge = data.obj("challenge")
            say(describe(challenge))
            choice = choose(challenge)
            if choice is None:
                continue
            result = answer(api, challenge, choice)
            say(f"Answered {choice.decision}: {result.optional_text('status')}.")
            answered += 1
            if once:
                return answered
    return answered


def number_from_file(path: Path, timeout: float) -> str:
    """Wait for the number to appear in a file (how a test plays the holder's eyes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            text = path.read_text().strip()
            if text:
                return text
        time.sleep(0.05)
    raise ServiceError(f"No number appeared in {path}.")


# --- QR sign-in and the mobile agent ----------------------------------------------------------


def qr_inspect(api: DeviceApi, fields: dict[str, str]) -> Reply:
    return api.signed("POST", "/api/v1/device/qr-login/inspect", {"code": fields["code"]})


def qr_answer(
    api: DeviceApi, fields: dict[str, str], *, passcode: str | None, approve: bool
) -> Reply:
    claims: JsonObject = {"code": fields["code"], "decision": "approve" if approve else "deny"}
    if approve:
        claims["passcode"] = passcode
    return api.signed_sealed("/api/v1/device/qr-login", claims)


def mia_login(
    api: DeviceApi, state: DeviceState, *, passcode: str | None, biometric: bool
) -> dict[str, str]:
    """Open a card session on this device; its token and keys, to keep in the state file."""
    if biometric:
        if not state.device_secret:
            raise ServiceError(
                "Biometric unlock was not enabled when this app was paired.",
                remedy="Sign in with --passcode-stdin, or pair again with --biometric.",
            )
        claims: JsonObject = {"device_secret": state.device_secret}
    else:
        claims = {"passcode": passcode or ""}
    session = api.signed_sealed("/api/v1/device/login", claims).data
    return {k: v for k, v in session.items() if isinstance(v, str)}
