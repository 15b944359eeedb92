"""The agent reads HR cards through pyscard and the real pcscd, as it would a USB reader;
and signs in with one, end to end, against the real service."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import factories as f
from tests.support import keys as k
from tests.support.hr_test_card import Behaviour, HrTestCard, on_reader
from tests.support.live_server import serve_runtime
from tests.support.pcsc_stack import wait_for

from cardvault.clients.agent import hr_card
from cardvault.services.signin import hr_cards
from cardvault.services.system.runtime import Actor, Runtime

from .conftest import PRIVATE_CHANNEL, card_on, private_pcscd

pytestmark = pytest.mark.pcsc
UID = "04A22B1AC35E80"


def tap_later(card: HrTestCard, *, after: float = 0.5, hold: float = 1.5) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(after), card.tap(hold=hold)))
    thread.start()
    return thread


# --- reading the UID --------------------------------------------------------------------


def test_a_card_tapped_on_the_named_reader_gives_its_uid(reader: str) -> None:
    card = HrTestCard(UID)
    waiting: list[list[str]] = []
    tapping = tap_later(card)

    tapped = hr_card.read_uid(reader="virtual pcd 00 01", timeout=10, on_wait=waiting.append)

    tapping.join()
    assert (tapped.uid, tapped.reader) == (UID, reader)
    assert waiting == [[reader]]
    assert card.apdus == [bytes.fromhex("FFCA000000")]


def test_a_card_already_lying_on_the_named_reader_is_read(reader: str) -> None:
    with on_reader(HrTestCard("04A1B2C3")) as card:
        wait_for(lambda: card_on(reader), timeout=5, what="the card")
        assert hr_card.read_uid(reader=reader, timeout=5).uid == "04A1B2C3"
    assert card.apdus


def test_without_a_reader_name_the_card_placed_on_any_reader_is_read(reader: str) -> None:
    card = HrTestCard("0102030405060708090A")
    tapping = tap_later(card)

    tapped = hr_card.read_uid(timeout=10)

    tapping.join()
    assert (tapped.uid, tapped.reader) == ("0102030405060708090A", reader)


def test_a_reader_that_cannot_read_uids_is_named(reader: str) -> None:
    tapping = tap_later(HrTestCard(UID, behaviour=Behaviour.REFUSE))

    with pytest.raises(hr_card.NotAnHrCard) as caught:
        hr_card.read_uid(reader=reader, timeout=10)

    tapping.join()
    assert "6A81" in caught.value.message
    assert reader in caught.value.message


def test_a_card_taken_away_while_it_is_read_says_tap_again(reader: str) -> None:
    tapping = tap_later(HrTestCard(UID, behaviour=Behaviour.VANISH))

    with pytest.raises(hr_card.CardTakenAway) as caught:
        hr_card.read_uid(reader=reader, timeout=10)

    tapping.join()
    assert "Tap it again" in (caught.value.remedy or "")


def test_no_tap_in_time_is_a_clear_error(reader: str) -> None:
    started = time.monotonic()

    with pytest.raises(hr_card.TapTimeout) as caught:
        hr_card.read_uid(reader=reader, timeout=1)

    assert 0.9 < time.monotonic() - started < 5
    assert "in time" in caught.value.message


def test_an_unknown_reader_name_lists_the_readers(reader: str) -> None:
    with pytest.raises(hr_card.NoReader) as caught:
        hr_card.read_uid(reader="OMNIKEY 5022", timeout=1)

    assert reader in (caught.value.remedy or "")


# --- the agent's command line, end to end ------------------------------------------------


def agent(*args: str, socket_path: str | None = None) -> subprocess.Popen[str]:
    env = {k_: v for k_, v in os.environ.items() if not k_.startswith(("CARDVAULT_", "PCSCLITE"))}
    if socket_path is not None:
        env["PCSCLITE_CSOCK_NAME"] = socket_path
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "cardvault-agent"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_until_asked(process: subprocess.Popen[str], words: str) -> list[str]:
    """Lines the agent printed on stderr, up to the one that asks for ``words``."""
    assert process.stderr is not None
    seen = []
    while True:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"the agent ended without asking {words!r}: {seen}")
        seen.append(line)
        if words in line:
            return seen


@pytest.fixture
def url(rt: Runtime, pcscd: None) -> Iterator[str]:
    with serve_runtime(rt) as base:
        yield base


def test_the_agent_signs_in_with_a_tapped_hr_card_and_the_passcode(
    rt: Runtime, operator: Actor, url: str, reader: str, tmp_path: Path
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)
    process = agent(
        "--server", url, "--state-dir", str(tmp_path), "--json",
        "login", "--hr-card", "--reader", reader, "--passcode-stdin", "--wait", "20",
    )  # fmt: skip
    wait_until_asked(process, "Tap your HR card")

    HrTestCard(UID).tap(hold=2)  # tapped, then taken away before the passcode is typed
    out, err = process.communicate(f"{f.STRONG_PASSCODE}\n", timeout=60)

    assert process.returncode == 0, err
    assert f'"card_serial": "{card.serial}"' in out
    assert (tmp_path / "session.json").exists()
    assert k.events(rt, "session.opened")[-1].details["method"] == "hr_card+hr_card"


def test_the_agent_without_any_reader_says_so(tmp_path: Path, pcsc_lock: None) -> None:
    with private_pcscd(tmp_path, with_readers=False) as (socket_path, _pid):
        process = agent(
            "--server", "http://localhost:9", "login", "--hr-card", "--wait", "5",
            socket_path=socket_path,
        )  # fmt: skip
        _out, err = process.communicate("", timeout=60)

    assert process.returncode != 0
    assert "No card reader was found." in err
    assert "Connect the HR card reader" in err


def test_the_reader_going_away_while_the_agent_waits_stops_the_sign_in(
    rt: Runtime, operator: Actor, tmp_path: Path, pcsc_lock: None
) -> None:
    k.org(rt, operator)
    card = f.active_card(rt, operator)
    hr_cards.add_hr_card(rt, operator, serial=card.serial, org_code="ORG1", uid=UID)
    with serve_runtime(rt) as url, private_pcscd(tmp_path, with_readers=True) as (socket_path, pid):
        process = agent(
            "--server", url, "login", "--hr-card", "--reader", "Private PCD 00 01",
            "--passcode-stdin", "--wait", "30", socket_path=socket_path,
        )  # fmt: skip
        wait_until_asked(process, "Tap your HR card")
        os.kill(pid, 15)  # the reader, and the service behind it, are gone
        _out, err = process.communicate(f"{f.STRONG_PASSCODE}\n", timeout=60)

    assert process.returncode != 0
    assert "no longer available" in err
    assert k.events(rt, "auth.login") == []
    assert k.events(rt, "auth.passcode") == []


def test_the_agent_without_the_smart_card_service_says_so(tmp_path: Path) -> None:
    process = agent(
        "--server", "http://localhost:9", "login", "--hr-card", "--wait", "5",
        socket_path=str(tmp_path / "no-pcscd.comm"),
    )  # fmt: skip
    _out, err = process.communicate("", timeout=60)

    assert process.returncode != 0
    assert "smart card service is not running" in err


def test_a_private_reader_pair_is_what_the_private_pcscd_serves() -> None:
    assert PRIVATE_CHANNEL < 32768  # vpcd listens on the channel id: keep clear of free ports
