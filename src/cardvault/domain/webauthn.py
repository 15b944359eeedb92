"""WebAuthn relying-party core for FIDO2 security keys (W3C WebAuthn Level 3, §7).

Pure: each ceremony is *begin* (options for the browser or agent, plus a JSON-safe state
the service keeps) and *complete* (that state and the client's ``toJSON()`` response in,
a verified result out). python-fido2's ``Fido2Server`` does the cryptographic
verification; this module adds what cardvault's design asks on top of it: only the
configured origins, an AAGUID allow-list, refusal of duplicate registrations,
single-use states, sign-counter checks (fido2 does none), and errors with stable codes.

Before fido2 sees a response, the checks of §7.1/§7.2 are made here one by one, so
that a failure names its reason; fido2 then verifies everything again (and the
signature and attestation statement), which keeps one verifier authoritative.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

from fido2.attestation.base import Attestation, InvalidAttestation
from fido2.rpid import verify_rp_id
from fido2.server import Fido2Server
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import (
    AttestationConveyancePreference,
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorData,
    CollectedClientData,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialRpEntity,
    PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
    RegistrationResponse,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from cardvault.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    PermissionDenied,
    error,
)
from cardvault.json_types import JsonObject, JsonValue, text

_AAGUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MAX_USER_HANDLE = 64  # WebAuthn §5.4.3
_MAX_NICKNAME = 64

#: A few well-known authenticator models, to show people a name rather than a UUID.
#: (The full list is the FIDO Metadata Service; this is only for display.)
WELL_KNOWN_AAGUIDS: Mapping[str, str] = {
    "00000000-0000-0000-0000-000000000000": "Unidentified authenticator (no AAGUID)",
    "01020304-0506-0708-0102-030405060708": "Chromium virtual authenticator (tests)",
    "cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5 Series",
    "ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 Series",
    "fa2b99dc-9e39-4257-8f92-4a30d23c4118": "YubiKey 5 Series with NFC",
    "2fc0579f-8113-47ea-b116-bb5a8db9202a": "YubiKey 5 Series with NFC",
    "c1f9a0bc-1dd2-404a-b27f-8e29047a43fd": "YubiKey 5 FIPS Series with NFC",
    "d8522d9f-575b-4866-88a9-ba99fa02f35b": "YubiKey Bio Series",
    "149a2021-8ef6-4133-96b8-81f8d5b7f1f5": "Security Key by Yubico with NFC",
    "a4e9fc6d-4cbe-4758-b8ba-37598bb5bbaa": "Security Key NFC by Yubico",
}


def aaguid_name(aaguid: str) -> str | None:
    """The model name for a well-known AAGUID, or None when we do not know it."""
    return WELL_KNOWN_AAGUIDS.get(aaguid.lower())


# --- errors ----------------------------------------------------------------------------


class UnknownCredential(AuthenticationFailed):
    code = "webauthn_unknown_credential"


@error
class OriginMismatch(AuthenticationFailed):
    code = "webauthn_origin_mismatch"
    origin: str


class RelyingPartyMismatch(AuthenticationFailed):
    code = "webauthn_rp_id_mismatch"


class BadSignature(AuthenticationFailed):
    code = "webauthn_bad_signature"


class ChallengeMismatch(AuthenticationFailed):
    code = "webauthn_challenge_mismatch"


class StateReplayed(AuthenticationFailed):
    code = "webauthn_state_replayed"


class UserPresenceMissing(AuthenticationFailed):
    code = "webauthn_user_presence_missing"


class UserVerificationMissing(AuthenticationFailed):
    code = "webauthn_user_verification_missing"


class AttestationInvalid(AuthenticationFailed):
    code = "webauthn_attestation_invalid"


@error
class SignCounterRegression(AuthenticationFailed):
    """The key's counter did not go up: the credential may exist on a second, cloned key."""

    code = "webauthn_sign_counter_regression"
    stored: int | None = None
    received: int


@error
class AuthenticatorNotAllowed(PermissionDenied):
    code = "webauthn_authenticator_not_allowed"
    aaguid: str


class CredentialAlreadyRegistered(Conflict):
    code = "webauthn_credential_exists"


class MalformedResponse(InvalidInput):
    code = "webauthn_malformed_response"


class InvalidState(InvalidInput):
    code = "webauthn_invalid_state"


# --- records ---------------------------------------------------------------------------


class Ceremony(StrEnum):
    REGISTRATION = "registration"
    ASSERTION = "assertion"


@dataclass(frozen=True, kw_only=True)
class WebAuthnPolicy:
    """How this service acts as a WebAuthn relying party (one per deployment/organisation)."""

    rp_id: str
    rp_name: str
    origins: tuple[str, ...]
    user_verification_required: bool
    allowed_aaguids: frozenset[str] | None  # None: any authenticator model
    timeout_ms: int = 60000

    def __post_init__(self) -> None:
        if not self.origins:
            raise InvalidInput("A WebAuthn policy needs at least one allowed origin.")
        for origin in self.origins:
            if not verify_rp_id(self.rp_id, origin):
                raise InvalidInput(
                    f"The origin {origin!r} cannot use the RP ID {self.rp_id!r}.",
                    remedy="Use https:// (or http://localhost) on the RP ID's domain.",
                )
        for aaguid in self.allowed_aaguids or ():
            _check_aaguid(aaguid)
        if self.timeout_ms <= 0:
            raise InvalidInput("The WebAuthn timeout must be positive.")


@dataclass(frozen=True, kw_only=True)
class StoredCredential:
    """A registered security key credential, as the service stores it."""

    credential_id: bytes
    credential_data: bytes  # AttestedCredentialData: AAGUID, id and COSE public key
    sign_count: int
    aaguid: str
    nickname: str
    user_handle: bytes

    def __post_init__(self) -> None:
        try:
            parsed = AttestedCredentialData(self.credential_data)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise InvalidInput("The stored credential data is not valid.") from e
        if parsed.credential_id != self.credential_id or self.sign_count < 0:
            raise InvalidInput("The stored credential data does not match its id.")
        _check_aaguid(self.aaguid)


@dataclass(frozen=True, kw_only=True)
class AssertionResult:
    """A verified assertion; the caller stores ``new_sign_count`` on the credential."""

    credential_id: bytes
    new_sign_count: int
    user_verified: bool
    user_handle: bytes


def _check_aaguid(aaguid: str) -> None:
    if not _AAGUID_RE.match(aaguid):
        raise InvalidInput(f"{aaguid!r} is not an AAGUID in lower-case UUID form.")


# --- registration (§7.1) ---------------------------------------------------------------


def begin_registration(
    policy: WebAuthnPolicy,
    *,
    user_handle: bytes,
    user_name: str,
    display_name: str,
    existing: Sequence[StoredCredential],
    resident_key: bool,
) -> tuple[JsonObject, JsonObject]:
    """Options for ``navigator.credentials.create`` and the state to keep until complete."""
    if not 1 <= len(user_handle) <= _MAX_USER_HANDLE:
        raise InvalidInput("A user handle is 1 to 64 bytes.")
    options, fido_state = _server(policy).register_begin(
        PublicKeyCredentialUserEntity(id=user_handle, name=user_name, display_name=display_name),
        credentials=[_descriptor(c) for c in existing],
        resident_key_requirement=(
            ResidentKeyRequirement.REQUIRED if resident_key else ResidentKeyRequirement.DISCOURAGED
        ),
        user_verification=_user_verification(policy),
        challenge=secrets.token_bytes(32),
    )
    state = _new_state(policy, Ceremony.REGISTRATION, fido_state)
    state["user_handle"] = websafe_encode(user_handle)
    state["excluded"] = [websafe_encode(c.credential_id) for c in existing]
    return _plain(options), state


def complete_registration(
    policy: WebAuthnPolicy,
    state: JsonObject,
    response: Mapping[str, JsonValue],
    *,
    nickname: str,
) -> StoredCredential:
    """Verify a ``create()`` response; the state is used up whatever the outcome."""
    _consume(policy, state, Ceremony.REGISTRATION)
    nickname = nickname.strip()
    if not 1 <= len(nickname) <= _MAX_NICKNAME:
        raise InvalidInput("Give the key a name of 1 to 64 characters.")
    with _malformed():
        registration = RegistrationResponse.from_dict(response)
        auth_data = registration.response.attestation_object.auth_data
    _check_client_data(policy, state, registration.response.client_data, "webauthn.create")
    _check_authenticator_data(policy, state, auth_data)
    try:
        auth_data = _server(policy).register_complete(_fido_state(state), registration)
    except InvalidAttestation as e:
        raise AttestationInvalid("The security key's attestation did not verify.") from e
    except ValueError as e:  # not expected after the checks above; still a refusal
        raise MalformedResponse("The security key's response could not be verified.") from e
    credential = auth_data.credential_data
    if credential is None:
        raise MalformedResponse("The response carries no new credential.")
    aaguid = str(credential.aaguid)
    if policy.allowed_aaguids is not None and aaguid not in policy.allowed_aaguids:
        name = aaguid_name(aaguid) or "This security key model"
        raise AuthenticatorNotAllowed(f"{name} is not allowed here.", aaguid=aaguid)
    if websafe_encode(credential.credential_id) in _texts(state.get("excluded")):
        raise CredentialAlreadyRegistered("This security key is already registered.")
    return StoredCredential(
        credential_id=credential.credential_id,
        credential_data=bytes(credential),
        sign_count=auth_data.counter,
        aaguid=aaguid,
        nickname=nickname,
        user_handle=websafe_decode(text(state, "user_handle")),
    )


# --- assertion (§7.2) ------------------------------------------------------------------


def begin_assertion(
    policy: WebAuthnPolicy, *, credentials: Sequence[StoredCredential] | None
) -> tuple[JsonObject, JsonObject]:
    """Options for ``navigator.credentials.get``; ``credentials=None`` asks for a
    discoverable credential (login without typing an identifier)."""
    options, fido_state = _server(policy).authenticate_begin(
        None if credentials is None else [_descriptor(c) for c in credentials],
        user_verification=_user_verification(policy),
        challenge=secrets.token_bytes(32),
    )
    return _plain(options), _new_state(policy, Ceremony.ASSERTION, fido_state)


def complete_assertion(
    policy: WebAuthnPolicy,
    state: JsonObject,
    credentials: Sequence[StoredCredential],
    response: Mapping[str, JsonValue],
) -> AssertionResult:
    """Verify a ``get()`` response against the candidate credentials.

    For a discoverable login, look the account up by the response's ``userHandle``
    first and pass that account's credentials. The state is used up whatever the outcome.
    """
    _consume(policy, state, Ceremony.ASSERTION)
    with _malformed():
        assertion = AuthenticationResponse.from_dict(response)
        auth_data = assertion.response.authenticator_data
    stored = _matching_credential(credentials, assertion)
    _check_client_data(policy, state, assertion.response.client_data, "webauthn.get")
    _check_authenticator_data(policy, state, auth_data)
    try:
        _server(policy).authenticate_complete(
            _fido_state(state), [AttestedCredentialData(stored.credential_data)], assertion
        )
    except ValueError as e:  # every other check already passed: only the signature is left
        raise BadSignature("The security key's signature did not verify.") from e
    _check_sign_count(stored, auth_data.counter)
    return AssertionResult(
        credential_id=stored.credential_id,
        new_sign_count=auth_data.counter,
        user_verified=auth_data.is_user_verified(),
        user_handle=stored.user_handle,
    )


def _matching_credential(
    credentials: Sequence[StoredCredential], assertion: AuthenticationResponse
) -> StoredCredential:
    for stored in credentials:
        if hmac.compare_digest(stored.credential_id, assertion.raw_id):
            handle = assertion.response.user_handle
            if handle is not None and not hmac.compare_digest(handle, stored.user_handle):
                break  # §7.2 step 6: the key says it belongs to someone else
            return stored
    raise UnknownCredential("This security key is not registered for this account.")


def _check_sign_count(stored: StoredCredential, received: int) -> None:
    """§6.1.1: a counter that does not increase hints at a cloned authenticator.

    Keys that do not count at all report 0 every time; that is allowed.
    """
    if stored.sign_count == 0 and received == 0:
        return
    if received <= stored.sign_count:
        raise SignCounterRegression(
            "This security key's counter went backwards: it may have been cloned.",
            remedy="Use another key and ask your RA to check this one.",
            stored=stored.sign_count,
            received=received,
        )


# --- the checks shared by both ceremonies ----------------------------------------------


def _check_client_data(
    policy: WebAuthnPolicy,
    state: JsonObject,
    client_data: CollectedClientData,
    expected_type: str,
) -> None:
    if client_data.type != expected_type:
        raise MalformedResponse("The response is for a different kind of request.")
    if client_data.origin not in policy.origins or client_data.cross_origin:
        raise OriginMismatch(
            "The request came from a web address this service does not accept.",
            origin=client_data.origin,
        )
    if not hmac.compare_digest(websafe_decode(text(state, "challenge")), client_data.challenge):
        raise ChallengeMismatch("The response answers a different challenge.")


def _check_authenticator_data(
    policy: WebAuthnPolicy, state: JsonObject, auth_data: AuthenticatorData
) -> None:
    expected = hashlib.sha256(policy.rp_id.encode()).digest()
    if not hmac.compare_digest(expected, auth_data.rp_id_hash):
        raise RelyingPartyMismatch("The security key answered for a different site.")
    if not auth_data.is_user_present():
        raise UserPresenceMissing("The security key was not touched.")
    if (
        state["user_verification"] == UserVerificationRequirement.REQUIRED
        and not auth_data.is_user_verified()
    ):
        raise UserVerificationMissing(
            "This sign-in needs the security key's PIN (or fingerprint).",
            remedy="Set a PIN on the key and enter it when asked.",
        )


def _consume(policy: WebAuthnPolicy, state: JsonObject, kind: Ceremony) -> None:
    """A state answers one response: mark it used before looking at anything else."""
    if state.get("ceremony") != kind or state.get("rp_id") != policy.rp_id:
        raise InvalidState("This response does not belong to the request in progress.")
    if state.get("used"):
        raise StateReplayed("This request was already answered; start again.")
    state["used"] = True


def _new_state(
    policy: WebAuthnPolicy, kind: Ceremony, fido_state: Mapping[str, JsonValue]
) -> JsonObject:
    return {
        "ceremony": str(kind),
        "rp_id": policy.rp_id,
        "challenge": fido_state["challenge"],
        "user_verification": str(fido_state["user_verification"]),
        "used": False,
    }


def _fido_state(state: JsonObject) -> JsonObject:
    """The part of our state that fido2's server reads back."""
    return {"challenge": state["challenge"], "user_verification": state["user_verification"]}


def _texts(value: JsonValue) -> list[str]:
    """A list of strings our own state wrote (credential ids); anything else reads as none."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@contextmanager
def _malformed() -> Iterator[None]:
    try:
        yield
    # RecursionError: fido2 parses clientDataJSON and CBOR recursively, without a depth limit
    except (KeyError, ValueError, TypeError, IndexError, RecursionError) as e:
        raise MalformedResponse("The security key's response could not be read.") from e


def _server(policy: WebAuthnPolicy) -> Fido2Server:
    server = Fido2Server(
        PublicKeyCredentialRpEntity(id=policy.rp_id, name=policy.rp_name),
        # keep the AAGUID: browsers zero it when attestation is "none"
        attestation=(
            AttestationConveyancePreference.DIRECT
            if policy.allowed_aaguids is not None
            else AttestationConveyancePreference.NONE
        ),
        verify_origin=lambda origin: origin in policy.origins,
        verify_attestation=_verify_statement,
    )
    server.timeout = policy.timeout_ms  # type: ignore[assignment]  # fido2 types it as None
    return server


def _verify_statement(attestation: AttestationObject, client_data_hash: bytes) -> None:
    """Check the attestation statement's own signature (not its trust chain: no MDS yet)."""
    if attestation.fmt == "none":
        return
    verifier = Attestation.for_type(attestation.fmt)()
    verifier.verify(attestation.att_stmt, attestation.auth_data, client_data_hash)


def _user_verification(policy: WebAuthnPolicy) -> UserVerificationRequirement:
    """The key is the possession factor beside the passcode, so its PIN is asked for only
    when the organisation requires it ("preferred" would prompt for it on every login)."""
    if policy.user_verification_required:
        return UserVerificationRequirement.REQUIRED
    return UserVerificationRequirement.DISCOURAGED


def _descriptor(credential: StoredCredential) -> PublicKeyCredentialDescriptor:
    return PublicKeyCredentialDescriptor(
        type=PublicKeyCredentialType.PUBLIC_KEY, id=credential.credential_id
    )


def _plain(options: Mapping[str, object]) -> JsonObject:
    """fido2's options as plain JSON types (its enums are str subclasses)."""
    plain: JsonObject = json.loads(json.dumps(dict(options)))
    return plain
