"""What the clients share: the 0600 state file, answers read with checked types, and the
agent's table of sign-in routes."""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cardvault.clients.agent import login_cmd
from cardvault.clients.common import state_file
from cardvault.clients.common.replies import Reply, UnexpectedReply
from cardvault.errors import CardvaultError


@dataclass(kw_only=True)
class Saved:
    server: str
    token: str = field(repr=False)


MISSING = CardvaultError("missing")
DAMAGED = CardvaultError("damaged")


def _load(path: Path, *, drop: bool = False) -> Saved:
    return state_file.load(path, Saved, missing=MISSING, damaged=DAMAGED, drop_damaged=drop)


def test_the_state_file_is_readable_by_its_user_only(tmp_path: Path) -> None:
    path = state_file.write(tmp_path / "state" / "s.json", Saved(server="https://x", token="t"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert _load(path) == Saved(server="https://x", token="t")
    assert not list(path.parent.glob(".*.tmp"))


def test_a_missing_state_file_raises_the_programs_error(tmp_path: Path) -> None:
    with pytest.raises(CardvaultError) as raised:
        _load(tmp_path / "none.json")
    assert raised.value is MISSING


@pytest.mark.parametrize("text", ["{not json", '{"server": "x"}', '{"server": "x", "t": 1}'])
def test_a_damaged_state_file_is_refused_and_dropped_if_asked(tmp_path: Path, text: str) -> None:
    kept, dropped = tmp_path / "kept.json", tmp_path / "dropped.json"
    for path in (kept, dropped):
        path.write_text(text)
    with pytest.raises(CardvaultError) as raised:
        _load(kept)
    assert raised.value is DAMAGED
    assert kept.exists()
    with pytest.raises(CardvaultError):
        _load(dropped, drop=True)
    assert not dropped.exists()


def test_removing_the_state_file_overwrites_it_first(tmp_path: Path) -> None:
    path = state_file.write(tmp_path / "s.json", Saved(server="https://x", token="secret"))
    state_file.remove(path)
    assert not path.exists()
    state_file.remove(path)  # nothing there: nothing to do


def test_a_reply_checks_the_type_of_each_field() -> None:
    reply = Reply({"s": "x", "n": 3, "o": {"a": "b"}, "l": [{"a": 1}], "t": ["a"], "z": None})
    assert reply.text("s") == "x"
    assert reply.number("n") == 3
    assert reply.obj("o").text("a") == "b"
    assert reply.objects("l")[0].number("a") == 1
    assert reply.texts("t") == ["a"]
    assert reply.objects("absent") == []
    assert reply.optional_text("z") is None
    assert reply.optional_obj("z") is None
    assert not reply.has("z")
    assert "z" in reply
    assert reply["s"] == "x"
    for read, name in [
        (reply.text, "n"),
        (reply.number, "s"),
        (reply.obj, "s"),
        (reply.objects, "t"),
        (reply.texts, "l"),
        (reply.text, "absent"),
    ]:
        with pytest.raises(UnexpectedReply, match=repr(name)):
            read(name)


def test_a_flag_is_any_set_value_as_the_service_sends_counts_too() -> None:
    reply = Reply({"whole": True, "connected": 2, "alive": False, "none": 0})
    assert reply.flag("whole")
    assert reply.flag("connected")
    assert not reply.flag("alive")
    assert not reply.flag("none")
    assert not reply.flag("absent")


def test_a_reply_shows_field_names_not_values() -> None:
    assert "secret" not in repr(Reply({"token": "secret"}))


def _args(**given: object) -> login_cmd.LoginArgs:
    fields: dict[str, object] = {
        name: False if name in _FLAGS else None for name in login_cmd.LoginArgs.__dataclass_fields__
    }
    fields["wait"] = 60.0
    fields.update(given)
    return login_cmd.LoginArgs(**fields)  # type: ignore[arg-type]


_FLAGS = {"passcode_stdin", "qr", "ra", "fido2", "hr_card", "hr_card_uid_stdin"}


@pytest.mark.parametrize(
    ("given", "route"),
    [
        ({"qr": True, "email": "a@b"}, "_by_qr"),
        ({"fido2": True}, "_by_key_or_card"),
        ({"hr_card": True}, "_by_key_or_card"),
        ({"hr_card_uid_stdin": True}, "_by_key_or_card"),
        ({"email": "a@b"}, "_by_passcode"),
        ({"ad_account": r"D\n", "ra": True}, "_by_passcode"),
    ],
)
def test_login_takes_the_first_route_its_options_fit(given: dict[str, object], route: str) -> None:
    args = _args(**given)
    chosen = next(r for applies, r in login_cmd.LOGIN_ROUTES if applies(args))
    assert chosen.__name__ == route
