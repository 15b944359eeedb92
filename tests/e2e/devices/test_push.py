"""Push with number matching and the one-time-code fallback, end to end: the reference
authenticator and the identity agent as separate processes against a running service."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from sqlalchemy import select
from tests.support import factories as f
from tests.support.live import Program, Running

from cardvault.store.models import AuditEvent, Card, Notification, Person, PushChallenge

from .conftest import World

pytestmark = pytest.mark.slow


def _events(world: World, action: str) -> list[AuditEvent]:
    with world.service.rt.db() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.card_id == world.card_id, AuditEvent.action == action)
                .order_by(AuditEvent.seq)
            )
        )


def _listen(world: World, *args: str) -> tuple[Program, Running]:
    phone = world.authenticator()
    world.pair(phone)
    listener = phone.start("listen", "--once", *args)
    listener.wait_for("Connected")
    return phone, listener


def test_pair_from_qr_image_and_approve_with_the_right_number(world: World) -> None:
    phone = world.authenticator()
    world.pair(phone)
    pc = world.agent()
    number_file = world.tmp / "shown-number"  # the holder reads the PC's screen
    listener = phone.start("listen", "--once", "--number-file", str(number_file))
    listener.wait_for("Connected")
    login = world.login(pc, number_file=number_file)
    number = login.wait_for("Number:").split(":", 1)[1].strip()
    assert len(number) == 2
    assert number.isdigit()
    code, out, err = login.finish()
    assert code == 0, err
    assert world.serial in out
    code, _, err = listener.finish()
    assert code == 0, err
    assert "Answered approve: approved" in err
    status = pc.run("--json", "status")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["method"] == "email+authenticator"
    [answered] = _events(world, "push.answered")
    assert answered.outcome == "success"
    with world.service.rt.db() as s:
        [ch] = s.scalars(select(PushChallenge)).all()
        assert ch.status == "used"
        assert ch.transaction_id is None  # the sign-in finished; the row stays for back-off


def test_a_wrong_number_refuses_the_sign_in(world: World) -> None:
    _phone, listener = _listen(world, "--number-file", str(world.tmp / "wrong"))
    login = world.login(world.agent())
    number = login.wait_for("Number:").split(":", 1)[1].strip()
    (world.tmp / "wrong").write_text(f"{(int(number) - 10 + 1) % 90 + 10:02d}")
    code, _, err = login.finish()
    assert code != 0
    assert "not the one shown here" in err
    code, _, err = listener.finish()
    assert code != 0
    assert "not the number shown on the computer" in err
    assert [e.reason for e in _events(world, "push.answered")] == ["push refused: wrong number"]


def test_deny_refuses_the_sign_in(world: World) -> None:
    _phone, listener = _listen(world, "--deny")
    login = world.login(world.agent())
    code, _, err = login.finish()
    assert code != 0
    assert "denied on your phone" in err
    assert listener.finish()[0] == 0
    assert [e.reason for e in _events(world, "push.answered")] == ["push denied"]


def test_this_wasnt_me_denies_audits_and_alerts_the_ras(world: World) -> None:
    _phone, listener = _listen(world, "--not-me")
    login = world.login(world.agent())
    code, _, err = login.finish()
    assert code != 0
    assert "RA has been told" in err
    assert listener.finish()[0] == 0
    assert [e.reason for e in _events(world, "push.answered")] == ["push denied: this wasn't me"]
    assert len(_events(world, "push.not_me_reported")) == 1
    with world.service.rt.db() as s:
        rows = s.scalars(select(Notification).where(Notification.template == "not_me_alert")).all()
    assert [r.recipient for r in rows] == [world.ra_email]
    with world.service.rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == world.serial))
        assert card is not None
        holder = s.get(Person, card.person_id)
        assert holder is not None
    # the holder's page in the vRA Manager (where the RA finds the card and its phones)
    assert rows[0].context["ra_link"] == f"{world.service.url}/ra/persons/{holder.user_id}"


def test_an_unanswered_push_expires(world: World) -> None:
    rt = world.service.rt
    rt.settings.push_challenge_seconds = 5
    _phone, listener = _listen(world, "--delay", "7", "--number", "42")
    login = world.login(world.agent())
    code, _, err = login.finish()
    assert code != 0
    assert "expired before it was answered" in err
    code, _, err = listener.finish()
    assert code != 0
    assert "expired" in err


def test_offline_phone_falls_back_to_the_one_time_code(world: World) -> None:
    phone = world.authenticator()
    world.pair(phone)
    state = json.loads((phone.state_dir / "authenticator.json").read_text())
    shown = phone.run("code")
    assert shown.returncode == 0, shown.stderr
    oathtool = shutil.which("oathtool")
    assert oathtool, "oathtool is needed (scripts/install-system-deps)"
    reference = subprocess.run(
        [oathtool, "--totp", "-b", state["totp_secret"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert shown.stdout.strip() == reference
    login = world.login(world.agent(), stdin=f"{f.STRONG_PASSCODE}\n{reference}\n")
    code, out, err = login.finish()
    assert code == 0, err
    assert world.serial in out
    assert "Number:" not in err  # no phone connected: no push was sent
    again = world.login(world.agent("pc2"), stdin=f"{f.STRONG_PASSCODE}\n{reference}\n")
    code, _, err = again.finish()
    assert code != 0
    assert "already been used" in err
