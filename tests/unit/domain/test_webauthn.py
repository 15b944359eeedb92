"""The WebAuthn relying-party core, against a software CTAP2 key driven by fido2's client."""

from __future__ import annotations

import base64
import dataclasses
import json
import struct
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest
from fido2 import cbor
from fido2.client import ClientError, DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap2.pin import ClientPin
from tests.support.soft_ctap2 import SOFT_AAGUID, SoftCtap2Device

from cardvault.domain.webauthn import (
    AttestationInvalid,
    AuthenticatorNotAllowed,
    BadSignature,
    ChallengeMismatch,
    InvalidState,
    MalformedResponse,
    OriginMismatch,
    RelyingPartyMismatch,
    SignCounterRegression,
    StateReplayed,
    StoredCredential,
    UnknownCredential,
    UserPresenceMissing,
    UserVerificationMissing,
    WebAuthnPolicy,
    aaguid_name,
    begin_assertion,
    begin_registration,
    complete_assertion,
    complete_registration,
)
from cardvault.errors import AuthenticationFailed, InvalidInput

RP_ID = "cardvault.example"
ORIGIN = "https://cardvault.example"
PIN = "4711"
SOFT_AAGUID_STR = str(uuid.UUID(bytes=SOFT_AAGUID))


def policy(**changes: Any) -> WebAuthnPolicy:
    fields: dict[str, Any] = {
        "rp_id": RP_ID,
        "rp_name": "cardvault",
        "origins": (ORIGIN,),
        "user_verification_required": False,
        "allowed_aaguids": None,
        "timeout_ms": 5000,
    }
    return WebAuthnPolicy(**(fields | changes))


class Person(UserInteraction):
    """Types the key's PIN when asked and counts the prompts."""

    def __init__(self, pin: str | None = PIN) -> None:
        self.pin = pin
        self.pin_prompts = 0

    def request_pin(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> str | None:
        self.pin_prompts += 1
        return self.pin


def client(
    device: SoftCtap2Device,
    origin: str = ORIGIN,
    verify: Callable[[str, str], bool] | None = None,
) -> Fido2Client:
    collector = (
        DefaultClientDataCollector(origin)
        if verify is None
        else DefaultClientDataCollector(origin, verify=verify)
    )
    return Fido2Client(device, collector, Person())


def create(fido_client: Fido2Client, options: Mapping[str, Any]) -> dict[str, Any]:
    response = fido_client.make_credential(options["publicKey"])
    return json.loads(json.dumps(dict(response)))


def get(fido_client: Fido2Client, options: Mapping[str, Any]) -> dict[str, Any]:
    response = fido_client.get_assertion(options["publicKey"]).get_response(0)
    return json.loads(json.dumps(dict(response)))


def register(
    device: SoftCtap2Device,
    rp: WebAuthnPolicy | None = None,
    *,
    user_handle: bytes = b"alice-handle",
    resident: bool = False,
    existing: Sequence[StoredCredential] = (),
) -> StoredCredential:
    rp = rp or policy()
    options, state = begin_registration(
        rp,
        user_handle=user_handle,
        user_name="alice@example.org",
        display_name="Alice",
        existing=existing,
        resident_key=resident,
    )
    response = create(client(device, rp.origins[0]), options)
    return complete_registration(rp, state, response, nickname="blue key")


def assert_with(
    device: SoftCtap2Device, stored: Sequence[StoredCredential], rp: WebAuthnPolicy | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh assertion from ``device``: (state, response)."""
    rp = rp or policy()
    options, state = begin_assertion(rp, credentials=stored)
    return state, get(client(device, rp.origins[0]), options)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the happy paths -------------------------------------------------------------------


def test_register_then_assert_verifies_and_reports_the_new_counter() -> None:
    device = SoftCtap2Device()
    stored = register(device)
    state, response = assert_with(device, [stored])

    result = complete_assertion(policy(), state, [stored], response)

    assert result.credential_id == stored.credential_id
    assert result.new_sign_count > stored.sign_count
    assert result.user_handle == b"alice-handle"
    assert result.user_verified is False


def test_registration_records_the_key_model_user_and_nickname() -> None:
    stored = register(SoftCtap2Device(), user_handle=b"h-1")

    assert stored.aaguid == SOFT_AAGUID_STR
    assert stored.user_handle == b"h-1"
    assert stored.nickname == "blue key"
    assert stored.sign_count == 1


def test_registration_options_are_plain_json_with_the_policy_settings() -> None:
    existing = register(SoftCtap2Device())
    options, state = begin_registration(
        policy(user_verification_required=True, timeout_ms=1234),
        user_handle=b"u",
        user_name="bob",
        display_name="Bob",
        existing=[existing],
        resident_key=True,
    )

    public_key = options["publicKey"]
    assert json.loads(json.dumps(options)) == options
    assert json.loads(json.dumps(state)) == state
    assert public_key["rp"] == {"id": RP_ID, "name": "cardvault"}
    assert public_key["timeout"] == 1234
    assert public_key["authenticatorSelection"]["userVerification"] == "required"
    assert public_key["authenticatorSelection"]["residentKey"] == "required"
    assert [c["id"] for c in public_key["excludeCredentials"]] == [b64(existing.credential_id)]
    assert len(unb64(public_key["challenge"])) == 32


def test_the_stored_credential_round_trips_through_its_bytes() -> None:
    stored = register(SoftCtap2Device())
    reloaded = StoredCredential(
        credential_id=bytes(stored.credential_id),
        credential_data=bytes(stored.credential_data),
        sign_count=stored.sign_count,
        aaguid=stored.aaguid,
        nickname=stored.nickname,
        user_handle=stored.user_handle,
    )
    assert reloaded == stored


# --- user verification -----------------------------------------------------------------


def test_user_verification_required_is_met_by_the_key_pin() -> None:
    rp = policy(user_verification_required=True)
    device = SoftCtap2Device(pin=PIN)
    stored = register(device, rp)
    state, response = assert_with(device, [stored], rp)

    result = complete_assertion(rp, state, [stored], response)

    assert result.user_verified is True


def test_user_verification_required_refuses_an_unverified_assertion() -> None:
    rp = policy(user_verification_required=True)
    device = SoftCtap2Device(pin=PIN)
    stored = register(device, rp)
    options, state = begin_assertion(rp, credentials=[stored])
    options["publicKey"]["userVerification"] = "discouraged"  # a client that skips the PIN

    response = get(client(device), options)

    with pytest.raises(UserVerificationMissing) as caught:
        complete_assertion(rp, state, [stored], response)
    assert caught.value.code == "webauthn_user_verification_missing"


def test_user_verification_required_refuses_an_unverified_registration() -> None:
    rp = policy(user_verification_required=True)
    options, state = begin_registration(
        rp, user_handle=b"u", user_name="a", display_name="A", existing=[], resident_key=False
    )
    options["publicKey"]["authenticatorSelection"]["userVerification"] = "discouraged"

    response = create(client(SoftCtap2Device(pin=PIN)), options)

    with pytest.raises(UserVerificationMissing):
        complete_registration(rp, state, response, nickname="k")


# --- discoverable credentials ----------------------------------------------------------


def test_discoverable_login_needs_no_identifier_and_names_the_account() -> None:
    rp = policy(user_verification_required=True)
    device = SoftCtap2Device(pin=PIN)
    stored = register(device, rp, user_handle=b"bob-handle", resident=True)
    accounts = {stored.user_handle: [stored]}

    options, state = begin_assertion(rp, credentials=None)
    assert "allowCredentials" not in options["publicKey"]
    response = get(client(device), options)
    handle = unb64(response["response"]["userHandle"])
    result = complete_assertion(rp, state, accounts[handle], response)

    assert result.user_handle == b"bob-handle"
    assert result.user_verified is True


def test_a_discoverable_credential_claimed_by_another_account_is_unknown() -> None:
    device = SoftCtap2Device(pin=PIN)
    mine = register(device, user_handle=b"mallory", resident=True)
    options, state = begin_assertion(policy(), credentials=None)
    response = get(client(device), options)
    forged = StoredCredential(
        credential_id=mine.credential_id,
        credential_data=mine.credential_data,
        sign_count=0,
        aaguid=mine.aaguid,
        nickname="x",
        user_handle=b"alice",
    )

    with pytest.raises(UnknownCredential):
        complete_assertion(policy(), state, [forged], response)


# --- authenticator models --------------------------------------------------------------


def test_an_authenticator_model_outside_the_allow_list_is_refused() -> None:
    yubikey_only = policy(allowed_aaguids=frozenset({"ee882879-721c-4913-9775-3dfcce97072a"}))

    with pytest.raises(AuthenticatorNotAllowed) as caught:
        register(SoftCtap2Device(), yubikey_only)
    assert caught.value.aaguid == SOFT_AAGUID_STR


def test_an_allowed_model_registers_and_its_packed_attestation_is_checked() -> None:
    rp = policy(allowed_aaguids=frozenset({SOFT_AAGUID_STR}))
    options, state = begin_registration(
        rp, user_handle=b"u", user_name="a", display_name="A", existing=[], resident_key=False
    )
    assert options["publicKey"]["attestation"] == "direct"

    stored = complete_registration(
        rp, state, create(client(SoftCtap2Device()), options), nickname="k"
    )

    assert stored.aaguid == SOFT_AAGUID_STR


def test_a_forged_attestation_signature_is_refused() -> None:
    rp = policy(allowed_aaguids=frozenset({SOFT_AAGUID_STR}))
    options, state = begin_registration(
        rp, user_handle=b"u", user_name="a", display_name="A", existing=[], resident_key=False
    )
    response = create(client(SoftCtap2Device()), options)
    attestation = cbor.decode(unb64(response["response"]["attestationObject"]))
    attestation["attStmt"]["sig"] = bytes(reversed(attestation["attStmt"]["sig"]))
    response["response"]["attestationObject"] = b64(cbor.encode(attestation))

    with pytest.raises(AttestationInvalid):
        complete_registration(rp, state, response, nickname="k")


def test_aaguid_name_knows_a_few_models() -> None:
    assert aaguid_name("01020304-0506-0708-0102-030405060708") == (
        "Chromium virtual authenticator (tests)"
    )
    assert aaguid_name("EE882879-721C-4913-9775-3DFCCE97072A") == "YubiKey 5 Series"
    assert aaguid_name("00000000-0000-0000-0000-000000000000") is not None
    assert aaguid_name(SOFT_AAGUID_STR) is None


# --- refusals --------------------------------------------------------------------------


def test_a_credential_not_in_the_candidates_is_unknown() -> None:
    alice_key, bob_key = SoftCtap2Device(), SoftCtap2Device()
    alice = register(alice_key, user_handle=b"alice")
    bob = register(bob_key, user_handle=b"bob")
    state, response = assert_with(bob_key, [bob])

    with pytest.raises(UnknownCredential) as caught:
        complete_assertion(policy(), state, [alice], response)
    assert isinstance(caught.value, AuthenticationFailed)


def test_an_assertion_from_another_origin_is_refused() -> None:
    device = SoftCtap2Device()
    stored = register(device)
    options, state = begin_assertion(policy(), credentials=[stored])
    # a sibling site may use the RP ID, but this service does not accept it as origin
    response = get(client(device, "https://evil.cardvault.example"), options)

    with pytest.raises(OriginMismatch) as caught:
        complete_assertion(policy(), state, [stored], response)
    assert caught.value.origin == "https://evil.cardvault.example"


def test_a_registration_from_another_origin_is_refused() -> None:
    options, state = begin_registration(
        policy(), user_handle=b"u", user_name="a", display_name="A", existing=[], resident_key=False
    )
    response = create(client(SoftCtap2Device(), "https://evil.cardvault.example"), options)

    with pytest.raises(OriginMismatch):
        complete_registration(policy(), state, response, nickname="k")


def test_a_key_answering_for_another_rp_id_is_refused() -> None:
    # a broken or hostile client lets the options name another RP ID for our origin
    options, state = begin_registration(
        policy(), user_handle=b"u", user_name="a", display_name="A", existing=[], resident_key=False
    )
    options["publicKey"]["rp"]["id"] = "other.example"
    lax = client(SoftCtap2Device(), verify=lambda rp_id, origin: True)

    with pytest.raises(RelyingPartyMismatch):
        complete_registration(policy(), state, create(lax, options), nickname="k")


def test_an_assertion_signed_for_another_rp_id_is_refused() -> None:
    other = policy(rp_id="other.example", origins=("https://other.example",))
    device = SoftCtap2Device()
    foreign = register(device, other)
    options, state = begin_assertion(policy(), credentials=[foreign])
    options["publicKey"]["rpId"] = "other.example"
    lax = client(device, verify=lambda rp_id, origin: True)

    with pytest.raises(RelyingPartyMismatch):
        complete_assertion(policy(), state, [foreign], get(lax, options))


def test_a_replayed_assertion_is_refused() -> None:
    device = SoftCtap2Device()
    stored = register(device)
    state, response = assert_with(device, [stored])
    complete_assertion(policy(), state, [stored], response)

    with pytest.raises(StateReplayed):
        complete_assertion(policy(), state, [stored], response)


def test_a_failed_attempt_uses_the_state_up_too() -> None:
    device = SoftCtap2Device()
    stored = register(device)
    state, response = assert_with(device, [stored])
    with pytest.raises(UnknownCredential):
        complete_assertion(policy(), state, [], response)

    with pytest.raises(StateReplayed):
        complete_assertion(policy(), state, [stored], response)


def test_a_response_to_another_challenge_is_refused() -> None:
    device = SoftCtap2Device()
    stored = register(device)
    _, response = assert_with(device, [stored])
    _, other_state = begin_assertion(policy(), credentials=[stored])

    with pytest.raises(ChallengeMismatch):
        complete_assertion(policy(), other_state, [stored], response)


def test_a_registration_state_cannot_complete_an_assertion() -> None:
    device = SoftCtap2Device()
    stored = register(device)
    _, response = assert_with(device, [stored])
    _, registration_state = begin_registration(
        policy(), user_handle=b"u", user_name="a", display_name="A", existing=[], resident_key=False
    )

    with pytest.raises(InvalidState):
        complete_assertion(policy(), registration_state, [stored], response)


def test_a_tampered_authenticator_data_fails_the_signature() -> None:
    device = SoftCtap2Device()
    stored = register(device)
    state, response = assert_with(device, [stored])
    auth_data = bytearray(unb64(response["response"]["authenticatorData"]))
    auth_data[33:37] = struct.pack(">I", 10_000)  # a bigger counter, same flags
    response["response"]["authenticatorData"] = b64(bytes(auth_data))

    with pytest.raises(BadSignature):
        complete_assertion(policy(), state, [stored], response)


def test_an_assertion_without_user_presence_is_refused() -> None:
    device = SoftCtap2Device()
    stored = register(device)
    state, response = assert_with(device, [stored])
    auth_data = bytearray(unb64(response["response"]["authenticatorData"]))
    auth_data[32] &= ~0x01
    response["response"]["authenticatorData"] = b64(bytes(auth_data))

    with pytest.raises(UserPresenceMissing):
        complete_assertion(policy(), state, [stored], response)


def test_a_garbled_response_is_malformed_input() -> None:
    _, state = begin_assertion(policy(), credentials=None)

    with pytest.raises(MalformedResponse) as caught:
        complete_assertion(policy(), state, [], {"id": "x", "response": {}})
    assert isinstance(caught.value, InvalidInput)


@pytest.mark.parametrize(
    ("field", "data"),
    [
        ("clientDataJSON", b"[" * 10_000 + b"]" * 10_000),
        # CBOR: 10,000 nested one-element arrays (0x81) around a zero
        ("attestationObject", b"\x81" * 10_000 + b"\x00"),
    ],
)
def test_a_response_nested_10000_deep_is_malformed_not_a_crash(field: str, data: bytes) -> None:
    device = SoftCtap2Device()
    rp = policy()
    options, state = begin_registration(
        rp,
        user_handle=b"alice-handle",
        user_name="alice@example.org",
        display_name="Alice",
        existing=(),
        resident_key=False,
    )
    response = create(client(device, rp.origins[0]), options)
    response["response"][field] = b64(data)

    with pytest.raises(MalformedResponse):
        complete_registration(rp, state, response, nickname="blue key")


# --- sign counters ---------------------------------------------------------------------


def test_a_counter_that_goes_backwards_after_a_clone_is_detected() -> None:
    original = SoftCtap2Device()
    stored = register(original)
    state, response = assert_with(original, [stored])
    result = complete_assertion(policy(), state, [stored], response)
    stored = dataclasses.replace(stored, sign_count=result.new_sign_count)
    clone = original.clone()

    state, response = assert_with(clone, [stored])
    with pytest.raises(SignCounterRegression) as caught:
        complete_assertion(policy(), state, [stored], response)
    assert caught.value.code == "webauthn_sign_counter_regression"
    assert "cloned" in caught.value.message
    assert caught.value.stored == result.new_sign_count
    assert caught.value.received < result.new_sign_count


def test_a_key_without_a_counter_may_stay_at_zero() -> None:
    device = SoftCtap2Device(counter=False)
    stored = register(device)
    assert stored.sign_count == 0

    for _ in range(2):
        state, response = assert_with(device, [stored])
        assert complete_assertion(policy(), state, [stored], response).new_sign_count == 0


# --- configuration ---------------------------------------------------------------------


def test_a_policy_refuses_an_origin_that_cannot_use_the_rp_id() -> None:
    with pytest.raises(InvalidInput):
        policy(origins=("https://elsewhere.example",))
    with pytest.raises(InvalidInput):
        policy(origins=("http://127.0.0.1:8000",))


def test_a_policy_accepts_localhost_for_development() -> None:
    assert policy(rp_id="localhost", origins=("http://localhost:8000",)).rp_id == "localhost"


def test_a_policy_wants_lower_case_aaguids() -> None:
    with pytest.raises(InvalidInput):
        policy(allowed_aaguids=frozenset({"EE882879-721C-4913-9775-3DFCCE97072A"}))


def test_a_stored_credential_must_match_its_data() -> None:
    stored = register(SoftCtap2Device())
    with pytest.raises(InvalidInput):
        StoredCredential(
            credential_id=b"another id",
            credential_data=stored.credential_data,
            sign_count=0,
            aaguid=stored.aaguid,
            nickname="k",
            user_handle=b"u",
        )


def test_the_key_refuses_to_register_twice_through_the_exclude_list() -> None:
    device = SoftCtap2Device()
    first = register(device)

    with pytest.raises(ClientError):
        register(device, existing=[first])
