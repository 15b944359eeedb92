"""The agent's security-key path end to end: server core ↔ agent ↔ software CTAP2 key."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fido2.ctap2.base import Ctap2
from fido2.ctap2.pin import ClientPin
from tests.support.soft_ctap2 import Presence, SoftCtap2Device

from cardvault.clients.agent.fido2_key import (
    NoSecurityKey,
    RelyingPartyMismatch,
    SecurityKeyAlreadyRegistered,
    SecurityKeyNotAllowed,
    SecurityKeyNotRegistered,
    SecurityKeyPinBlocked,
    SecurityKeyPinRequired,
    SecurityKeyRemoved,
    SecurityKeyUnsupported,
    TouchTimeout,
    WrongSecurityKeyPin,
    find_devices,
    get_assertion,
    make_credential,
    require_device,
)
from cardvault.domain.webauthn import (
    StoredCredential,
    WebAuthnPolicy,
    begin_assertion,
    begin_registration,
    complete_assertion,
    complete_registration,
)
from cardvault.errors import CardvaultError

ORIGIN = "https://cardvault.example"
PIN = "4711"


def policy(*, uv: bool = False, timeout_ms: int = 5000) -> WebAuthnPolicy:
    return WebAuthnPolicy(
        rp_id="cardvault.example",
        rp_name="cardvault",
        origins=(ORIGIN,),
        user_verification_required=uv,
        allowed_aaguids=None,
        timeout_ms=timeout_ms,
    )


class Prompts:
    """The agent's user interface: a PIN typed in, and "touch your key" notices."""

    def __init__(self, pin: str | None = PIN) -> None:
        self._pin = pin
        self.pin_asked = 0
        self.touch_asked = 0

    def pin(self) -> str:
        self.pin_asked += 1
        assert self._pin is not None
        return self._pin

    def touch(self) -> None:
        self.touch_asked += 1


def enrol(
    device: SoftCtap2Device,
    rp: WebAuthnPolicy,
    prompts: Prompts | None = None,
    *,
    resident: bool = False,
    existing: tuple[StoredCredential, ...] = (),
) -> StoredCredential:
    prompts = prompts or Prompts()
    options, state = begin_registration(
        rp,
        user_handle=b"carol",
        user_name="carol@example.org",
        display_name="Carol",
        existing=existing,
        resident_key=resident,
    )
    response = make_credential(
        device, origin=ORIGIN, creation_options=options, pin=prompts.pin, on_touch=prompts.touch
    )
    return complete_registration(rp, state, response, nickname="agent key")


def sign_in(
    device: SoftCtap2Device,
    rp: WebAuthnPolicy,
    credentials: list[StoredCredential] | None,
    prompts: Prompts | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    prompts = prompts or Prompts()
    options, _ = begin_assertion(rp, credentials=credentials)
    return get_assertion(
        device,
        origin=ORIGIN,
        request_options=options,
        pin=kwargs.get("pin", prompts.pin),
        on_touch=prompts.touch,
        cancel=kwargs.get("cancel"),
    )


def test_the_agent_registers_and_signs_in_with_pin_and_touch() -> None:
    rp = policy(uv=True)
    device = SoftCtap2Device(pin=PIN)
    prompts = Prompts()
    stored = enrol(device, rp, prompts)
    options, state = begin_assertion(rp, credentials=[stored])

    response = get_assertion(
        device, origin=ORIGIN, request_options=options, pin=prompts.pin, on_touch=prompts.touch
    )
    result = complete_assertion(rp, state, [stored], response)

    assert result.user_verified is True
    assert result.new_sign_count > stored.sign_count
    assert prompts.pin_asked == 2  # once to register, once to sign in
    assert prompts.touch_asked == 2


def test_a_pin_set_over_ctap_enables_required_verification() -> None:
    device = SoftCtap2Device()
    ClientPin(Ctap2(device)).set_pin(PIN)

    rp = policy(uv=True)
    stored = enrol(device, rp)
    options, state = begin_assertion(rp, credentials=[stored])

    response = get_assertion(device, origin=ORIGIN, request_options=options, pin=Prompts().pin)

    assert complete_assertion(rp, state, [stored], response).user_verified is True


@pytest.mark.parametrize("protocol", [1, 2])
def test_both_pin_protocols_verify_the_user(protocol: int) -> None:
    rp = policy(uv=True)
    device = SoftCtap2Device(pin=PIN, pin_protocols=(protocol,))
    stored = enrol(device, rp)
    options, state = begin_assertion(rp, credentials=[stored])

    response = get_assertion(device, origin=ORIGIN, request_options=options, pin=Prompts().pin)

    assert complete_assertion(rp, state, [stored], response).user_verified is True


def test_the_agent_signs_in_without_pin_when_not_required() -> None:
    rp = policy()
    device = SoftCtap2Device(pin=PIN)
    prompts = Prompts()
    stored = enrol(device, rp, prompts)
    options, state = begin_assertion(rp, credentials=[stored])

    response = get_assertion(device, origin=ORIGIN, request_options=options, pin=prompts.pin)
    result = complete_assertion(rp, state, [stored], response)

    assert result.user_verified is False
    assert prompts.pin_asked == 0


def test_the_agent_accepts_the_inner_public_key_options_too() -> None:
    rp = policy()
    device = SoftCtap2Device()
    stored = enrol(device, rp)
    options, state = begin_assertion(rp, credentials=[stored])

    response = get_assertion(device, origin=ORIGIN, request_options=options["publicKey"])

    assert complete_assertion(rp, state, [stored], response).credential_id == stored.credential_id


def test_a_discoverable_login_from_the_agent_names_the_account() -> None:
    rp = policy(uv=True)
    device = SoftCtap2Device(pin=PIN)
    stored = enrol(device, rp, resident=True)
    options, state = begin_assertion(rp, credentials=None)

    response = get_assertion(device, origin=ORIGIN, request_options=options, pin=Prompts().pin)

    assert complete_assertion(rp, state, [stored], response).user_handle == b"carol"


def test_a_wrong_pin_says_how_many_attempts_are_left() -> None:
    device = SoftCtap2Device(pin=PIN)
    stored = enrol(device, policy(uv=True))

    with pytest.raises(WrongSecurityKeyPin) as caught:
        sign_in(device, policy(uv=True), [stored], Prompts(pin="0000"))
    assert caught.value.attempts_remaining == 7
    assert "7 attempts left" in caught.value.message
    assert caught.value.code == "fido2_pin_wrong"


def test_three_wrong_pins_in_a_row_ask_to_reinsert_the_key() -> None:
    device = SoftCtap2Device(pin=PIN)
    stored = enrol(device, policy(uv=True))
    for _ in range(2):
        with pytest.raises(WrongSecurityKeyPin):
            sign_in(device, policy(uv=True), [stored], Prompts(pin="0000"))

    with pytest.raises(SecurityKeyPinBlocked) as caught:
        sign_in(device, policy(uv=True), [stored], Prompts(pin="0000"))
    assert caught.value.power_cycle is True
    assert "insert it again" in (caught.value.remedy or "")


def test_a_pin_blocked_for_good_needs_a_reset() -> None:
    device = SoftCtap2Device(pin=PIN)
    stored = enrol(device, policy(uv=True))
    for attempt in range(8):
        if attempt and attempt % 3 == 0:
            device.power_cycle()
        with pytest.raises((WrongSecurityKeyPin, SecurityKeyPinBlocked)):
            sign_in(device, policy(uv=True), [stored], Prompts(pin="0000"))
    device.power_cycle()

    with pytest.raises(SecurityKeyPinBlocked) as caught:
        sign_in(device, policy(uv=True), [stored])
    assert caught.value.power_cycle is False


def test_a_needed_pin_without_a_pin_prompt_is_a_clear_error() -> None:
    device = SoftCtap2Device(pin=PIN)
    stored = enrol(device, policy(uv=True))

    with pytest.raises(SecurityKeyPinRequired):
        sign_in(device, policy(uv=True), [stored], pin=None)


def test_a_key_without_a_pin_cannot_meet_required_verification() -> None:
    with pytest.raises(SecurityKeyUnsupported) as caught:
        enrol(SoftCtap2Device(), policy(uv=True))
    assert "PIN" in (caught.value.remedy or "")


def test_a_key_without_pin_support_cannot_meet_required_verification() -> None:
    with pytest.raises(SecurityKeyUnsupported):
        enrol(SoftCtap2Device(client_pin=False), policy(uv=True))


def test_a_refused_touch_is_not_allowed() -> None:
    device = SoftCtap2Device()
    stored = enrol(device, policy())
    device.presence = Presence.REFUSE

    with pytest.raises(SecurityKeyNotAllowed):
        sign_in(device, policy(), [stored])


def test_an_untouched_key_times_out_with_the_request() -> None:
    device = SoftCtap2Device()
    stored = enrol(device, policy())
    device.presence = Presence.IGNORE
    prompts = Prompts()

    with pytest.raises(TouchTimeout):
        sign_in(device, policy(timeout_ms=100), [stored], prompts)
    assert prompts.touch_asked == 1


def test_the_agent_can_cancel_a_waiting_key() -> None:
    device = SoftCtap2Device()
    stored = enrol(device, policy())
    device.presence = Presence.IGNORE
    cancel = threading.Event()
    cancel.set()

    with pytest.raises(TouchTimeout):
        sign_in(device, policy(), [stored], cancel=cancel)


def test_a_removed_key_is_reported_as_removed() -> None:
    device = SoftCtap2Device()
    stored = enrol(device, policy())
    device.unplug()

    with pytest.raises(SecurityKeyRemoved) as caught:
        sign_in(device, policy(), [stored])
    assert caught.value.code == "fido2_key_removed"


def test_a_key_that_is_not_registered_is_named_so() -> None:
    stored = enrol(SoftCtap2Device(), policy())

    with pytest.raises(SecurityKeyNotRegistered):
        sign_in(SoftCtap2Device(), policy(), [stored])


def test_registering_the_same_key_twice_is_a_conflict() -> None:
    device = SoftCtap2Device()
    first = enrol(device, policy())

    with pytest.raises(SecurityKeyAlreadyRegistered):
        enrol(device, policy(), existing=(first,))


def test_options_for_another_site_are_refused_by_the_agent() -> None:
    device = SoftCtap2Device()
    stored = enrol(device, policy())
    options, _ = begin_assertion(policy(), credentials=[stored])
    options["publicKey"]["rpId"] = "bank.example"

    with pytest.raises(RelyingPartyMismatch):
        get_assertion(device, origin=ORIGIN, request_options=options)


def test_options_that_are_not_webauthn_are_invalid_input() -> None:
    with pytest.raises(CardvaultError) as caught:
        get_assertion(SoftCtap2Device(), origin=ORIGIN, request_options={"hello": "world"})
    assert caught.value.code == "invalid_input"


def test_no_key_plugged_in_is_a_clear_error() -> None:
    with pytest.raises(NoSecurityKey) as caught:
        require_device([])
    assert caught.value.remedy == "Insert your security key and try again."
    device = SoftCtap2Device()
    assert require_device([device]) is device


def test_find_devices_lists_usb_keys_without_failing() -> None:
    assert isinstance(find_devices(), list)
