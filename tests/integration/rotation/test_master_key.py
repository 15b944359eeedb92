"""Rotating the master key online (issue 20): every blob re-sealed under the new version
while the old one still opens, the old one retired at the end, a crash resumed by running
the command again, and sign-ins that keep working throughout."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import LargeBinary, select
from tests.support import auth as a
from tests.support.cli import Cli

from cardvault.errors import CardvaultError, IntegrityError
from cardvault.keystore.provider import unpack
from cardvault.keystore.ring import MasterKeyRing
from cardvault.services.audit import signing_key
from cardvault.services.pki import ca
from cardvault.services.rotation import master, sealed
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport import keys as transport_keys
from cardvault.store.models import AuditEvent, Base, Card


def ring(rt: Runtime) -> MasterKeyRing:
    assert isinstance(rt.master_key, MasterKeyRing)
    return rt.master_key


def card_versions(rt: Runtime) -> set[int]:
    with rt.db() as session:
        rows = session.execute(select(Card.key_record, Card.mk_version)).all()
    assert rows
    return {unpack(blob)[0] for blob, _ in rows if blob} | {v for _, v in rows}


def actions(rt: Runtime) -> list[str]:
    with rt.db() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_every_sealed_column_of_the_models_is_known_to_the_rotation() -> None:
    listed = {f"{c.table.name}.{c.blob}" for c in sealed.COLUMNS}
    binary = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, LargeBinary)
    }
    assert binary - listed - sealed.NOT_SEALED == set()


def test_a_rotation_reseals_everything_and_retires_the_old_version(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    holders = [a.holder(rt, operator) for _ in range(3)]
    old_blob = rt.master_key.seal(b"sealed before", aad=b"test")
    assert card_versions(rt) == {1}

    done = master.rotate(rt, operator, settle=0)

    assert (done.from_versions, done.to_version, done.resumed) == ((1,), 2, False)
    assert done.resealed > 0
    assert master.versions(rt) == (2,)
    assert set(master.pending(rt).values()) == {0}
    assert card_versions(rt) == {2}
    for item in sealed.files(rt.data_dir, rt.settings.keys_dir):
        assert unpack(item.path.read_bytes())[0] == 2, item.path
    description = json.loads((rt.settings.keys_dir / "master.json").read_text())
    assert description["mk_version"] == 2
    assert "older" not in description
    assert not list(rt.settings.keys_dir.glob("master-v*.key"))
    with pytest.raises(IntegrityError):  # the old version is gone
        rt.master_key.open(old_blob, aad=b"test")
    # everything still opens: cards, their TOTP secrets, the CA, audit and transport keys
    engine = Engine(rt)
    for h in holders:
        assert a.login(engine, h, code=h.code()).session is not None
    rt._memo.clear()
    assert ca.load(rt).cert is not None
    assert signing_key.audit_private_key(rt) is not None
    assert transport_keys.keys(rt)
    recorded = actions(rt)
    assert recorded.index("rotation.master_key_started") < recorded.index(
        "rotation.master_key_done"
    )


def test_an_interrupted_rotation_keeps_both_versions_and_the_cli_resumes_it(
    rt: Runtime, operator: Actor, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    a.open_org(rt, operator)
    holders = [a.holder(rt, operator) for _ in range(4)]
    monkeypatch.setattr(master, "BATCH", 1)  # one card record per committed batch

    class Crash(Exception):
        pass

    def crash_after_two(step: master.Progress) -> None:
        if step.what == "card records" and step.seen == 2:
            raise Crash

    with pytest.raises(Crash):
        master.rotate(rt, operator, progress=crash_after_two, settle=0)
    assert master.versions(rt) == (1, 2)
    assert card_versions(rt) == {1, 2}  # half done, both readable
    assert 0 < master.pending(rt)["card records"] < len(holders)
    engine = Engine(rt)
    assert a.login(engine, holders[0], code=holders[0].code()).session is not None
    status = cli.run("--json", "keys", "rotation-status").ok().json
    assert status["rotation_under_way"] is True
    assert status["versions"] == [1, 2]

    done = cli.run("--json", "keys", "rotate-master").ok()
    assert done.json["resumed"] is True
    assert done.json["to_version"] == 2
    assert "card records:" in done.stderr  # progress on stderr
    assert master.versions(rt) == (2,)
    assert card_versions(rt) == {2}
    for h in holders[1:]:
        assert a.login(engine, h, code=h.code()).session is not None
    assert cli.run("--json", "keys", "rotation-status").ok().json["rotation_under_way"] is False


def test_sign_ins_keep_working_while_the_master_key_rotates(
    rt: Runtime, operator: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    a.open_org(rt, operator)
    holders = [a.holder(rt, operator) for _ in range(6)]
    monkeypatch.setattr(master, "BATCH", 2)
    engine = Engine(rt)
    stop, failures, signed_in = threading.Event(), [], [0]

    def sign_in_again_and_again() -> None:
        i = 0
        while not stop.is_set():
            h = holders[i % len(holders)]
            try:
                result = a.login(engine, h)  # passcode: the record opens under either version
                assert result.session is None  # the second factor is still to come
                signed_in[0] += 1
            except (CardvaultError, AssertionError) as exc:
                failures.append(exc)
            i += 1

    workers = [threading.Thread(target=sign_in_again_and_again) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        done = master.rotate(rt, operator, settle=0.2)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert failures == []
    assert signed_in[0] > 0
    assert done.to_version == 2
    assert master.versions(rt) == (2,)
    assert card_versions(rt) == {2}
    for h in holders:  # and the whole sign-in, TOTP secret included, after it
        assert a.login(engine, h, code=h.code()).session is not None
