"""Rotating the transport keys (issue 20): publish a new one, both accepted, the old one
retired through the CLI; envelopes to a retired key are refused; each step audited."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.support import auth as a
from tests.support.cli import Cli
from tests.support.factories import STRONG_PASSCODE

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.crypto import envelope
from cardvault.crypto.aead import aad
from cardvault.errors import CardvaultError
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.services.transport import envelopes
from cardvault.services.transport import keys as transport_keys
from cardvault.store.models import AuditEvent


def sealed_to(rt: Runtime, kid: str) -> str:
    key = transport_keys.keys(rt)[kid]
    return envelope.seal_request(key.public_jwk(), {"hello": kid}, now=time.time()).token


def published(rt: Runtime) -> dict[str, str]:
    transport_keys.forget_scan(rt.settings.keys_dir)
    return {kid: key.alg for kid, key in transport_keys.keys(rt).items()}


def test_a_new_transport_key_is_published_both_are_accepted_and_the_old_one_retires(
    rt: Runtime, cli: Cli
) -> None:
    before = published(rt)
    old_ecdh = transport_keys.preferred_kid(rt)
    assert before[old_ecdh] == envelope.ECDH_KEY_MANAGEMENT
    to_old = sealed_to(rt, old_ecdh)

    added = cli.run("--json", "keys", "transport-add").ok().json
    now = published(rt)
    assert set(now) == {*before, added["kid"]}
    assert transport_keys.preferred_kid(rt) == added["kid"]  # own clients move on
    listed = cli.run("--json", "keys", "transport-list").ok().json
    assert [k["kid"] for k in listed if k["preferred"]] == [added["kid"]]
    assert envelopes.open_request(rt, to_old).claims["hello"] == old_ecdh  # still accepted
    assert envelopes.open_request(rt, sealed_to(rt, added["kid"])).claims["hello"]

    to_old_again = sealed_to(rt, old_ecdh)
    cli.run("--json", "keys", "transport-retire", old_ecdh).ok()
    assert old_ecdh not in published(rt)
    with pytest.raises(CardvaultError):
        envelopes.open_request(rt, to_old_again)

    last = cli.run("--json", "keys", "transport-retire", added["kid"])
    assert last.returncode != 0
    assert "only" in last.error["message"]
    assert added["kid"] in published(rt)
    with rt.db() as session:
        recorded = list(session.scalars(select(AuditEvent.action)))
    assert "rotation.transport_key_added" in recorded
    assert "rotation.transport_key_retired" in recorded


def test_a_client_that_fetched_the_retired_key_seals_again_to_the_published_one(
    rt: Runtime, cli: Cli, live_url: str, operator: Actor
) -> None:
    a.local_network(rt, operator)
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    data = core.LoginInput(identifier_kind="email", identifier=h.email, passcode=STRONG_PASSCODE)
    with httpx.Client(base_url=live_url, timeout=30) as http:
        api = CardvaultApi(http)
        old = api.transport_key()["kid"]  # fetched before the rotation, and kept
        added = cli.run("--json", "keys", "transport-add").ok().json
        time.sleep(transport_keys.RESCAN_SECONDS * 1.5)  # the service re-reads its key folder
        fresh = CardvaultApi(http).transport_key()
        assert fresh["kid"] == added["kid"], "a new client should seal to the newest key"
        cli.run("--json", "keys", "transport-retire", str(old)).ok()
        time.sleep(transport_keys.RESCAN_SECONDS * 1.5)  # the service re-reads its key folder

        state = core.login(api, "test", data, totp=h.code(), ask_code=lambda _q: "")
        assert state.token
        assert api.transport_key()["kid"] == added["kid"]
        with pytest.raises(ServiceError) as refused:  # pinned to the retired key: no retry
            CardvaultApi(http, kid=str(old)).transport_key()
        assert "does not match" in refused.value.message


@pytest.mark.parametrize("kid", ["-qPQPZfCSBMxGwOspBtJGIvQQeHioSUr9STmqBxQ0pc", "--hO5u"])
def test_a_kid_that_begins_with_a_dash_is_taken_as_a_kid_not_an_option(cli: Cli, kid: str) -> None:
    """A thumbprint is base64url: one kid in 64 begins with "-" (CI met one)."""
    refused = cli.run("--json", "keys", "transport-retire", kid)
    assert refused.returncode != 0
    assert refused.error["code"] == "not_found", refused.error
    assert kid in refused.error["message"]


def _restore_newest_first(rt: Runtime, newest: str, tmp_path: Path) -> None:
    """Copy the key folder away and back as a restore that keeps no file times may: the
    newest key's file written first, so that on disk it is the oldest."""
    folder = rt.settings.keys_dir / "transport"
    backup = shutil.move(folder, tmp_path / "backup")
    folder.mkdir(mode=0o700)
    files = sorted(Path(backup).glob("*.sealed"), key=lambda p: p.stem != newest)
    for written, path in enumerate(files):
        shutil.copyfile(path, folder / path.name)
        os.utime(folder / path.name, ns=(written * 10**9, written * 10**9))
    transport_keys.forget_scan(rt.settings.keys_dir)


def test_the_key_added_last_stays_preferred_after_a_restore_that_loses_file_times(
    rt: Runtime, tmp_path: Path
) -> None:
    older = transport_keys.preferred_kid(rt)
    added = transport_keys.create(rt.settings.keys_dir, rt.master_key, ecdh=True)
    _restore_newest_first(rt, added.kid, tmp_path)
    assert transport_keys.preferred_kid(rt) == added.kid
    assert list(transport_keys.keys(rt))[-2:] == [older, added.kid]  # oldest first


def test_a_key_sealed_before_keys_said_when_they_were_added_ranks_oldest(
    rt: Runtime, tmp_path: Path
) -> None:
    earlier = envelope.TransportKey.generate_ecdh()
    folder = rt.settings.keys_dir / "transport"
    sealed = rt.master_key.seal(earlier.to_pem(), aad=aad("transport-key", earlier.kid))
    (folder / f"{earlier.kid}.sealed").write_bytes(sealed)  # the file written last
    transport_keys.forget_scan(rt.settings.keys_dir)
    ranked = list(transport_keys.keys(rt))
    assert ranked[0] == earlier.kid
    assert transport_keys.preferred_kid(rt) == ranked[-1] != earlier.kid
