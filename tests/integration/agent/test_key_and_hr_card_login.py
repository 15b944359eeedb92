"""The identity agent against the real service over HTTP (uvicorn on a free port): sign-in
with a security key (key first; passcode first), with an HR card number, and the WebAuthn
JSON API an RA uses to register a key. The key is the software CTAP2 authenticator behind
the same agent code that drives a USB key."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support.live_server import serve_runtime
from tests.support.soft_ctap2 import SoftCtap2Device

from cardvault.clients.agent import core, fido2_key, key_login
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.services.signin import hr_cards
from cardvault.services.system.runtime import Actor, Runtime

UID = "04A22B1AC35E80"


@pytest.fixture
def url(rt: Runtime) -> Iterator[str]:
    with serve_runtime(rt, webauthn_timeout_ms=5000) as base:
        yield base


@pytest.fixture
def api(url: str) -> Iterator[CardvaultApi]:
    with httpx.Client(base_url=url, timeout=30) as client:
        yield CardvaultApi(client)


class Person:
    """The agent's prompts, recording what was asked and in which order."""

    def __init__(self, device: SoftCtap2Device | None, pin: str | None = k.PIN) -> None:
        self.device = device
        self._pin = pin
        self.asked: list[str] = []

    def prompts(self) -> key_login.KeyPrompts:
        return key_login.KeyPrompts(
            device=self._device, touch=self._touch, pin=self._give_pin, passcode=self._passcode
        )

    def _device(self) -> Any:
        self.asked.append("key")
        return fido2_key.require_device([self.device] if self.device else [])

    def _touch(self) -> None:
        self.asked.append("touch")

    def _give_pin(self) -> str:
        self.asked.append("pin")
        assert self._pin is not None
        return self._pin

    def _passcode(self) -> str:
        self.asked.append("passcode")
        return f.STRONG_PASSCODE


def register_over_http(
    api: CardvaultApi, token: str, serial: str, device: SoftCtap2Device, url: str, **body: Any
) -> dict[str, Any]:
    begun = api.post("/api/v1/webauthn/registration/begin", {"serial": serial, **body}, token=token)
    credential = fido2_key.make_credential(
        device,
        origin=url,
        creation_options={"publicKey": begun["publicKey"]},
        pin=k.pin_of(device),
    )
    return api.post(
        "/api/v1/webauthn/registration/complete",
        {"ceremony_id": begun["ceremony_id"], "nickname": "Desk key", "credential": credential},
        token=token,
    )


def test_an_ra_registers_a_key_and_the_agent_signs_in_with_it_alone(
    rt: Runtime, operator: Actor, api: CardvaultApi, url: str
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device(pin=k.PIN)
    registered = register_over_http(
        api, k.ra_session(rt, operator), card.serial, device, url, resident_key=True
    )
    assert (registered["method"], registered["label"]) == ("fido2", "Desk key")
    assert registered["resident_key"] is True
    person = Person(device)

    st = key_login.login_with_key(api, url, key_login.Who(), person.prompts())

    assert st.card_serial == card.serial
    assert person.asked == ["key", "pin", "touch", "passcode"]
    assert core.status(api, st)["method"] == "fido2+fido2"


def test_with_an_email_the_agent_asks_the_passcode_then_the_key(
    rt: Runtime, operator: Actor, api: CardvaultApi, url: str
) -> None:
    k.org(rt, operator, **k.NO_UV)
    h = a.holder(rt, operator)
    device = SoftCtap2Device(pin=k.PIN)
    register_over_http(api, k.ra_session(rt, operator), h.card.serial, device, url)
    person = Person(device)

    st = key_login.login_with_key(
        api, url, key_login.Who(kind="email", value=h.email), person.prompts()
    )

    assert st.card_serial == h.card.serial
    assert person.asked == ["passcode", "key", "touch"]  # no PIN: not required here


def test_no_key_plugged_in_is_a_clear_error_and_nothing_changes(
    rt: Runtime, operator: Actor, api: CardvaultApi, url: str
) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    k.register(rt, operator, card, SoftCtap2Device(), resident=True)

    with pytest.raises(fido2_key.NoSecurityKey) as caught:
        key_login.login_with_key(
            api, url, key_login.Who(organisation="ORG1"), Person(None).prompts()
        )
    assert caught.value.remedy == "Insert your security key and try again."
    assert k.events(rt, "fido2.sign_in") == []


def test_waiting_for_a_key_gives_up_with_the_same_error() -> None:
    asked: list[str] = []
    with pytest.raises(fido2_key.NoSecurityKey):
        fido2_key.wait_for_device(
            lambda: [], timeout=0.3, poll=0.05, on_wait=lambda: asked.append("insert")
        )
    assert asked == ["insert"]
    device = SoftCtap2Device()
    assert fido2_key.wait_for_device(lambda: [device], timeout=0.3) is device


def test_a_key_pulled_out_during_sign_in_is_reported_as_removed(
    rt: Runtime, operator: Actor, api: CardvaultApi, url: str
) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)
    device.unplug()

    with pytest.raises(fido2_key.SecurityKeyRemoved):
        key_login.login_with_key(
            api, url, key_login.Who(organisation="ORG1"), Person(device).prompts()
        )


def test_the_api_names_a_replayed_or_unknown_ceremony(
    rt: Runtime, operator: Actor, api: CardvaultApi, url: str
) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)
    begun = api.post("/api/v1/webauthn/assertion/begin", {"organisation": "ORG1"})
    answer = fido2_key.get_assertion(
        device, origin=url, request_options={"publicKey": begun["publicKey"]}
    )
    body = {"ceremony_id": begun["ceremony_id"], "credential": answer}
    proof = api.post("/api/v1/webauthn/assertion/complete", body)
    assert proof["key_nickname"] == "Blue key"

    with pytest.raises(ServiceError) as replayed:
        api.post("/api/v1/webauthn/assertion/complete", body)
    with pytest.raises(ServiceError) as unknown:
        api.post("/api/v1/webauthn/assertion/complete", {**body, "ceremony_id": "nope"})

    assert (replayed.value.status, replayed.value.problem) == (
        401,
        "webauthn_state_replayed",
    )
    assert (unknown.value.status, unknown.value.problem) == (
        422,
        "webauthn_invalid_state",
    )


def test_registration_needs_an_ra_of_the_cards_organisation(
    rt: Runtime, operator: Actor, api: CardvaultApi, url: str
) -> None:
    k.org(rt, operator, "ORG1")
    k.org(rt, operator, "ORG2")
    card = f.active_card(rt, operator, "ORG2")
    token = k.ra_session(rt, operator, "ORG1")

    with pytest.raises(ServiceError) as elsewhere:
        api.post("/api/v1/webauthn/registration/begin", {"serial": card.serial}, token=token)
    with pytest.raises(ServiceError) as anonymous:
        api.post("/api/v1/webauthn/registration/begin", {"serial": card.serial})

    assert elsewhere.value.status == 404
    assert anonymous.value.status == 401


def test_an_hr_card_number_and_the_passcode_sign_in(
    rt: Runtime, operator: Actor, api: CardvaultApi, url: str
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)

    st = key_login.login_with_hr_card(api, url, key_login.Who(), UID, lambda: f.STRONG_PASSCODE)

    assert st.card_serial == card.serial
    assert core.status(api, st)["method"] == "hr_card+hr_card"


def test_an_hr_card_not_associated_here_says_what_to_do(
    rt: Runtime, operator: Actor, api: CardvaultApi, url: str
) -> None:
    k.org(rt, operator)
    f.active_card(rt, operator)

    with pytest.raises(ServiceError) as caught:
        key_login.login_with_hr_card(api, url, key_login.Who(), UID, lambda: f.STRONG_PASSCODE)

    assert f"HR card {UID}" in caught.value.message
    assert "ask your RA to associate it" in (caught.value.remedy or "")
    refused = k.events(rt, "auth.login")[-1]
    assert refused.details["identifier_kind"] == "hr_card"


def test_the_test_page_and_its_script_are_served_under_a_strict_policy(
    rt: Runtime, operator: Actor, url: str
) -> None:
    a.local_network(rt, operator)
    page = httpx.get(f"{url}/webauthn/test")
    script = httpx.get(f"{url}/webauthn/cardvault-webauthn.js")

    assert page.status_code == script.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in page.text  # every script is an external file
    assert script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{url}/webauthn/nothing.js").status_code == 404


# --- the agent's command line ---------------------------------------------------------


def agent(
    url: str, state_dir: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "cardvault-agent"
    env = {k_: v for k_, v in os.environ.items() if not k_.startswith("CARDVAULT_")}
    return subprocess.run(
        [str(script), "--server", url, "--state-dir", str(state_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_the_agent_command_reads_an_hr_card_number_typed_by_a_wedge_reader(
    rt: Runtime, operator: Actor, url: str, tmp_path: Path
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)

    done = agent(
        url,
        tmp_path,
        "--json",
        "login",
        "--hr-card-uid-stdin",
        "--passcode-stdin",
        stdin=f"04:a2:2b:1a:c3:5e:80\n{f.STRONG_PASSCODE}\n",
    )

    assert done.returncode == 0, done.stderr
    assert f'"card_serial": "{card.serial}"' in done.stdout
    assert "HR card 04A22B1AC35E80 read." in done.stderr


def test_the_agent_command_without_a_security_key_says_so(url: str, tmp_path: Path) -> None:
    done = agent(url, tmp_path, "login", "--fido2", "--wait", "1")

    assert done.returncode != 0
    assert "No security key was found." in done.stderr
    assert "Insert your security key" in done.stderr
