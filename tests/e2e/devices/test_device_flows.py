"""Pairing, QR sign-in, the mobile identity agent, revocation and two instances with Redis,
end to end with the reference authenticator and the agent as separate processes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from tests.support import factories as f
from tests.support.live import serve
from tests.support.redis_server import REDIS_URL, fresh_prefix, redis_or_skip

from cardvault.config import Settings
from cardvault.services.devices import registry
from cardvault.services.system.runtime import Actor
from cardvault.store.models import Device, KeySlotInfo, Link

from .conftest import World, build_world

pytestmark = pytest.mark.slow


def test_an_expired_pairing_code_is_refused_clearly(world: World) -> None:
    png = world.pairing_png()
    with world.service.rt.db.begin() as s:
        s.execute(update(Link).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    phone = world.authenticator()
    done = phone.run("pair", "--qr-image", str(png), "--passcode-stdin", stdin=f.STRONG_PASSCODE)
    assert done.returncode != 0
    assert "This pairing code has expired" in done.stderr
    assert "Ask your RA to show a new pairing QR code" in done.stderr
    fresh = world.pairing_png()
    used = phone.run("pair", "--qr-image", str(fresh), "--passcode-stdin", stdin=f.STRONG_PASSCODE)
    assert used.returncode == 0, used.stderr
    again = world.authenticator("other").run(
        "pair", "--qr-image", str(fresh), "--passcode-stdin", stdin=f.STRONG_PASSCODE
    )
    assert again.returncode != 0
    assert "already been used" in again.stderr


def test_qr_sign_in_opens_the_session_on_the_pc(world: World) -> None:
    phone = world.authenticator()
    world.pair(phone)
    pc = world.agent()
    png = world.tmp / "login.png"
    login = pc.start("login", "--qr", "--qr-png", str(png))
    login.wait_for("Scan this")
    done = phone.run(
        "qr-login", "--qr-image", str(png), "--passcode-stdin", stdin=f.STRONG_PASSCODE
    )
    assert done.returncode == 0, done.stderr
    assert "Sign-in request for Organisation ORG1 from" in done.stderr
    code, out, err = login.finish()
    assert code == 0, err
    assert world.serial in out
    status = pc.run("--json", "status")
    assert json.loads(status.stdout)["method"] == "qr+device"


def test_mobile_agent_signs_in_with_passcode_and_with_biometrics(world: World) -> None:
    phone = world.authenticator()
    world.pair(phone, application="mia", biometric=True)
    state_file = phone.state_dir / "authenticator.json"
    assert state_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(state_file.read_text())["device_secret"]  # kept only on the "phone"
    with world.service.rt.db() as s:
        slots = s.scalars(select(KeySlotInfo.name).where(KeySlotInfo.card_id == world.card_id))
        assert any(name.startswith("device-") for name in slots)
    by_passcode = phone.run("--json", "login", "--passcode-stdin", stdin=f.STRONG_PASSCODE)
    assert by_passcode.returncode == 0, by_passcode.stderr
    assert json.loads(by_passcode.stdout)["card_serial"] == world.serial
    by_biometric = phone.run("--json", "login", "--biometric")
    assert by_biometric.returncode == 0, by_biometric.stderr
    status = phone.run("--json", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["session"]["method"] == "mia+biometric"


def test_revocation_closes_the_open_connection_and_deletes_the_slot(world: World) -> None:
    phone = world.authenticator()
    world.pair(phone, application="mia", biometric=True)
    listener = phone.start("listen")
    listener.wait_for("Connected")
    with world.service.rt.db() as s:
        device_id = s.scalars(select(Device.id)).one()
    # as the RA page does it: in the service process (with Redis, from any instance)
    registry.revoke(world.service.rt, Actor.operator("ra"), device_id, reason="phone lost")
    code, _, err = listener.finish(timeout=5)
    assert code != 0
    assert "removed from the card" in err
    with world.service.rt.db() as s:
        names = list(
            s.scalars(select(KeySlotInfo.name).where(KeySlotInfo.card_id == world.card_id))
        )
        assert not any(n.startswith("device-") for n in names)
    refused = phone.run("login", "--biometric")
    assert refused.returncode != 0
    assert "not paired with a usable card" in refused.stderr


@pytest.fixture
def two_instances(settings: Settings, tls: tuple[Path, Path], tmp_path: Path, operator: Actor):  # type: ignore[no-untyped-def]
    redis_or_skip()
    prefix = fresh_prefix()
    shared = {"redis_url": REDIS_URL, "redis_prefix": prefix, "push_challenge_seconds": 30}
    with serve(settings, *tls, **shared) as first, serve(settings, *tls, **shared) as second:
        yield build_world(settings, first, tmp_path, tls[0], operator), second


def test_two_instances_through_redis(two_instances) -> None:  # type: ignore[no-untyped-def]
    world, second = two_instances
    phone = world.authenticator()
    done = phone.run(
        "pair",
        "--qr-image",
        str(world.pairing_png(second.url)),
        "--passcode-stdin",
        stdin=f.STRONG_PASSCODE,
    )
    assert done.returncode == 0, done.stderr
    state = json.loads((phone.state_dir / "authenticator.json").read_text())
    assert state["server"] == second.url  # the phone holds its stream open to instance two
    number_file = world.tmp / "number"
    listener = phone.start("listen", "--once", "--number-file", str(number_file))
    listener.wait_for("Connected")
    login = world.login(world.agent(url=world.service.url), number_file=number_file)
    login.wait_for("Number:")
    code, out, err = login.finish()
    assert code == 0, err
    assert world.serial in out
    assert listener.finish()[0] == 0
