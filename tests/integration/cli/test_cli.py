"""The real ``cardvault`` admin command, run as a subprocess on SQLite and PostgreSQL.

Each command costs a Python start-up (about a second), so the happy path is one long
scenario per database and the refusals set their state up in-process with the factories.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import typer
import typer.main
from cryptography import x509
from sqlalchemy import func, select, text
from tests.support import auth as a
from tests.support import factories as f
from tests.support.cli import Cli, cardvault_script
from tests.support.databases import TEST_ARGON2
from tests.support.live_server import free_port

from cardvault.cli.main import app as cli_app
from cardvault.config import Settings
from cardvault.crypto.tls import development_certificate
from cardvault.domain.audit_chain import AuditRecord, ChainHead, verify_chain
from cardvault.keystore.local import default_runtime_dir
from cardvault.services.system.runtime import Actor, Runtime, keystore_for, open_runtime
from cardvault.store import db
from cardvault.store.models import (
    AuditEvent,
    Card,
    Certificate,
    KeySlotInfo,
    Person,
    RaRoleGrant,
)

PASSCODE = f.ISSUANCE_PASSCODE + "\n"
ENROLMENT = {
    "issuance_passcode": f.ISSUANCE_PASSCODE,
    "passcode": f.STRONG_PASSCODE,
    "questions": [
        {"question": q, "answer": a} for q, a in zip(f.QUESTIONS, f.ANSWERS, strict=True)
    ],
}

pytestmark = pytest.mark.slow  # every test here runs the real CLI (a second each)


@pytest.fixture
def keys_cli(tmp_path: Path, key_template: Path) -> Iterator[Cli]:
    """For refusals decided by the data directory (keys, CA files) rather than the database:
    SQLite only, migrated in-process."""
    data = tmp_path / "keys-only"
    shutil.copytree(key_template, data)
    runner = Cli(data_dir=data, database_url=f"sqlite:///{tmp_path / 'keys-only.db'}")
    settings = Settings(data_dir=data, database_url=runner.database_url, **TEST_ARGON2)  # type: ignore[arg-type]
    open_runtime(settings, migrate=True).close()
    yield runner
    runner.forget_unsealed_key()


@contextmanager
def _runtime_of(cli: Cli) -> Iterator[Runtime]:
    settings = Settings(data_dir=cli.data_dir, database_url=cli.database_url, **TEST_ARGON2)  # type: ignore[arg-type]
    rt = open_runtime(settings)
    try:
        yield rt
    finally:
        rt.close()


def _count(rt: Runtime, model: type) -> int:
    with rt.db() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


# -- every command answers --help ------------------------------------------------------


def _command_paths(group: object, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    commands = getattr(group, "commands", {})
    for name, command in commands.items():
        yield (*prefix, name)
        yield from _command_paths(command, (*prefix, name))


def test_every_command_has_help() -> None:
    from typer.testing import CliRunner

    root = typer.main.get_command(cli_app)
    paths = list(_command_paths(root))
    assert ("card", "issue") in paths
    assert ("audit", "export") in paths
    assert len(paths) >= 25
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(cli_app, [*path, "--help"])
        assert result.exit_code == 0, f"{' '.join(path)} --help: {result.output}"
        assert "Usage" in result.output


def test_help_runs_from_the_console_script() -> None:
    out = subprocess.run(
        [cardvault_script(), "--help"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0
    for group in ("init", "serve", "unseal", "keys", "org", "person", "ra", "card", "ca", "audit"):
        assert group in out.stdout


def test_card_issue_takes_no_passcode_argument(keys_cli: Cli) -> None:
    root = typer.main.get_command(cli_app)
    issue = root.commands["card"].commands["issue"]  # type: ignore[attr-defined]
    for param in issue.params:
        if "passcode" in param.name:
            assert param.is_flag, f"--{param.name} must not take a value"
    uid = "555000000444"
    given = keys_cli.run("card", "issue", "--org", "ORG1", "--user-id", uid, "--passcode", "x1y2z3")
    assert given.returncode == 2
    assert "No such option" in given.stderr
    no_tty = keys_cli.run("card", "issue", "--org", "ORG1", "--user-id", uid)
    assert no_tty.returncode == 2
    assert "stdin is not a terminal" in no_tty.error["message"]
    assert "--passcode-stdin" in no_tty.error["remedy"]


# -- the whole tour --------------------------------------------------------------------


def test_operator_tour_with_json_output(tmp_path: Path, database_url: str) -> None:
    cli = Cli(data_dir=tmp_path / "tour", database_url=database_url)
    try:
        _tour(cli, tmp_path)
    finally:
        cli.forget_unsealed_key()


def _tour(cli: Cli, tmp_path: Path) -> None:
    init = cli.run("init", "--demo").ok().json
    assert init["created"] is True
    assert init["demo"]["organisation"] == "DEMO"
    assert init["demo"]["ra_user"]["status"] == "active"
    assert (cli.data_dir / "tls" / "cert.pem").exists()
    credentials = cli.data_dir / "demo-credentials.json"
    assert init["demo_credentials"] == str(credentials)
    again = cli.run("init", "--demo", "--if-missing", json_output=False).ok()  # every make run
    assert f"The demo credentials are in {credentials}" in again.stdout

    policy = json.dumps({"key_algorithm": "ecp256"})
    org = cli.run(
        "org", "create", "ORG2", "Second Trust", "--network", "10.1.0.0/16", "--policy", policy
    )
    assert org.ok().json["code"] == "ORG2"
    assert {o["code"] for o in cli.run("org", "list").ok().json} == {"DEMO", "ORG2"}
    shown = cli.run("org", "show", "org2").ok().json
    assert shown["networks"] == ["10.1.0.0/16"]
    assert shown["policy"]["key_algorithm"] == "ecp256"

    uid = "555000000123"
    person = cli.run(
        "person", "create", "--user-id", uid, "--forename", "Bob", "--surname", "Jones",
        "--email", "bob.jones@example.org", "--org", "ORG2",
    )  # fmt: skip
    assert person.ok().json["common_name"] == "Bob Jones"
    assert cli.run("ra", "grant", uid, "ORG2", "ra_agent").ok().json["role"] == "ra_agent"
    assert cli.run("person", "show", uid).ok().json["ra_roles"] == [
        {"organisation": "ORG2", "role": "ra_agent"}
    ]
    assert cli.run("ra", "revoke", uid, "ORG2", "ra_agent").ok().json["revoked"] is True
    with _runtime_of(cli) as rt:
        assert _count(rt, RaRoleGrant) == 1  # the demo RA manager's

    issued = cli.run(
        "card", "issue", "--org", "ORG2", "--user-id", uid, "--passcode-stdin", stdin=PASSCODE
    ).ok()
    card = issued.json
    assert f.ISSUANCE_PASSCODE not in issued.stdout + issued.stderr
    assert (card["status"], card["key_algorithm"]) == ("issued", "ecp256")
    assert {c["usage"] for c in card["certificates"]} == {"authentication", "content_commitment"}
    serial = card["serial"]

    enrolled = cli.run("card", "enrol", serial, "--stdin-json", stdin=json.dumps(ENROLMENT)).ok()
    assert enrolled.json == {"serial": serial, "status": "active"}
    view = cli.run("card", "show", serial).ok().json
    assert view["card"]["status"] == "active"
    assert view["holder"]["user_id"] == uid
    assert {s["name"] for s in view["slots"]} == {
        "passcode", "recovery-1-2", "recovery-1-3", "recovery-2-3"
    }  # fmt: skip
    assert len(view["certificates"]) == 2
    pems = cli.run("card", "certs", serial).ok().json
    for shown in view["certificates"]:
        pem = tmp_path / f"{shown['usage']}.pem"
        pem.write_text(pems[shown["usage"]])
        printed = subprocess.run(
            ["openssl", "x509", "-in", str(pem), "-noout", "-serial"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert printed == f"serial={shown['serial']}\n"

    ca_pem = cli.run("ca", "export").ok().json["pem"]
    ca_cert = x509.load_pem_x509_certificate(ca_pem.encode())
    assert "Development Issuing CA" in ca_cert.subject.rfc4514_string()
    assert {c["issuer"] for c in view["certificates"]} == {ca_cert.subject.rfc4514_string()}

    revoked = cli.run("card", "revoke", serial, "--reason", "left the trust").ok().json
    assert revoked == {"serial": serial, "status": "revoked"}

    verified = cli.run("audit", "verify").ok().json
    assert verified["ok"] is True
    chains = {c["chain"]: c for c in verified["chains"]}
    assert set(chains) == {"service", "DEMO", "ORG2"}
    assert all(c["ok"] for c in chains.values())

    jsonl = cli.run("audit", "export", "--org", "ORG2", "--format", "jsonl").ok().stdout
    records = [_record(json.loads(line)) for line in jsonl.splitlines()]
    actions = [r.action for r in records]
    assert actions[0] == "organisation.created"
    assert {"person.created", "ra.role_granted", "ra.role_revoked", "card.issued"} <= set(actions)
    assert actions[-2:] == ["card.enrolled", "card.revoked"]
    assert chains["ORG2"]["events"] == len(records)
    last = records[-1]
    verify_chain(records, head=ChainHead(chain=last.chain, seq=last.seq, hash=last.hash),
                 chain=last.chain)  # fmt: skip
    csv_text = cli.run("audit", "export", "--org", "ORG2", "--format", "csv").ok().stdout
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert [r["action"] for r in rows] == actions
    assert rows[-1]["reason"] == "left the trust"

    assert cli.run("db", "upgrade").ok().json == {"revision": db.head_revision()}


def _record(data: dict[str, object]) -> AuditRecord:
    return AuditRecord(**data)  # type: ignore[arg-type]


# -- refusals: precise message, non-zero exit, nothing changed -------------------------


def test_unknown_organisation_is_refused(cli: Cli, rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    uid = f.person(rt, operator, "ORG1")
    persons, events = _count(rt, Person), _count(rt, AuditEvent)
    joined = cli.run(
        "person", "create", "--user-id", "555000000777", "--forename", "Eve", "--surname",
        "Example", "--org", "NOPE",
    )  # fmt: skip
    assert joined.returncode == 3
    assert joined.error == {
        "code": "unknown_organisation",
        "message": "There is no organisation with code NOPE.",
    }
    issued = cli.run(
        "card", "issue", "--org", "nope", "--user-id", uid, "--passcode-stdin",
        stdin=PASSCODE, json_output=False,
    )  # fmt: skip
    assert issued.returncode == 3
    assert issued.stderr.endswith("Error: There is no organisation with code NOPE.\n")
    assert (_count(rt, Person), _count(rt, AuditEvent), _count(rt, Card)) == (persons, events, 0)


def test_network_changes_that_need_more_are_refused(cli: Cli, rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator, networks=["10.1.0.0/16"])
    events = _count(rt, AuditEvent)
    everywhere = cli.run("org", "networks", "ORG1", "--add", "::/0")
    assert everywhere.returncode == 2
    assert everywhere.error["code"] == "everywhere_needs_confirmation"
    assert everywhere.error["remedy"] == "Add --allow-everywhere if that is what you mean."
    both = cli.run("org", "networks", "ORG1", "--set", "--add", "10.2.0.0/16", json_output=False)
    assert both.returncode == 2
    assert both.stderr.endswith("Error: Use only one of --set, --add.\n")
    assert _count(rt, AuditEvent) == events
    cleared = cli.run("org", "networks", "org1", "--clear", json_output=False).ok()
    assert cleared.stdout == "ORG1 networks now: none (nobody can reach the service for it)\n"


def test_duplicate_user_id_is_refused(cli: Cli, rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    uid = f.person(rt, operator, "ORG1", forename="Alice")
    events = _count(rt, AuditEvent)
    again = cli.run(
        "person", "create", "--user-id", uid, "--forename", "Other", "--surname", "Person",
        "--org", "ORG1",
    )  # fmt: skip
    assert again.returncode == 4
    assert again.error == {
        "code": "duplicate_user_id",
        "message": f"A person with user id {uid} already exists.",
    }
    with rt.db() as s:
        people = list(s.scalars(select(Person).where(Person.user_id == uid)))
    assert [p.forename for p in people] == ["Alice"]
    assert _count(rt, AuditEvent) == events


def test_weak_passcode_at_enrolment_says_why(cli: Cli, rt: Runtime, operator: Actor) -> None:
    f.org(rt, operator)
    issued = f.issued_card(rt, operator, algorithm="ecp256")
    events = _count(rt, AuditEvent)
    weak = cli.run(
        "card", "enrol", issued.serial, "--stdin-json",
        stdin=json.dumps({**ENROLMENT, "passcode": "password123"}),
    )  # fmt: skip
    assert weak.returncode == 2
    assert weak.error["reason"] == "too_common"
    assert "too common" in weak.error["message"]
    with rt.db() as s:
        card = s.scalar(select(Card).where(Card.serial == issued.serial))
        assert card is not None
        slots = set(s.scalars(select(KeySlotInfo.name).where(KeySlotInfo.card_id == card.id)))
    assert (card.status, card.failed_attempts, slots) == ("issued", 0, {"passcode"})
    assert _count(rt, AuditEvent) == events


def test_bad_enrolment_json_is_refused(keys_cli: Cli) -> None:
    broken = keys_cli.run("card", "enrol", "CV0000000000", "--stdin-json", stdin='{"passcode": ')
    assert broken.returncode == 2
    assert "not valid JSON" in broken.error["message"]


def test_unseal_refuses_too_few_or_foreign_shares(keys_cli: Cli, tmp_path: Path) -> None:
    other = Cli(data_dir=tmp_path / "other", database_url=keys_cli.database_url)
    keystore_for(Settings(data_dir=other.data_dir, **TEST_ARGON2)).create()  # type: ignore[arg-type]
    mine = keys_cli.run("keys", "split", "--shares", "5", "--threshold", "3").ok().json["shares"]
    theirs = other.run("keys", "split", "--shares", "3", "--threshold", "2").ok().json["shares"]
    refusals = {
        "\n".join(mine[:2]): "2 shares given, 3 needed",
        "\n".join(theirs[:2]): "These shares do not rebuild this data directory's master key.",
        "\n".join([*mine[:2], theirs[0]]): "these shares come from different keys",
    }
    for shares, message in refusals.items():
        refused = keys_cli.run("unseal", "--shares-stdin", stdin=shares + "\n")
        assert refused.returncode == 2, message
        assert refused.error["message"] == message
    assert keystore_for(Settings(data_dir=keys_cli.data_dir, **TEST_ARGON2)).is_sealed()  # type: ignore[arg-type]
    three = keys_cli.run("unseal", "--shares-stdin", stdin="\n".join(mine[2:]) + "\n")
    assert three.ok().json["unsealed"] is True


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("corrupt_master_json", "master.json is damaged"),
        ("truncated_master_key", "keys/master.key is damaged"),
        ("empty_master_key", "master.key does not hold this data directory's master key"),
        ("missing_keys_dir", "No master key in"),
        ("truncated_ca_key", "ca-key.sealed"),
    ],
)
def test_damaged_data_directory_is_refused(keys_cli: Cli, damage: str, message: str) -> None:
    keys, ca_dir = keys_cli.data_dir / "keys", keys_cli.data_dir / "ca"
    with _runtime_of(keys_cli) as rt:
        operator = Actor.operator("tester")
        f.org(rt, operator, policy={"key_algorithm": "ecp256"})
        uid = f.person(rt, operator, "ORG1")
    if damage == "corrupt_master_json":
        (keys / "master.json").write_text('{"mk_version": 1, "key_')
    elif damage == "truncated_master_key":
        key = (keys / "master.key").read_bytes()
        (keys / "master.key").write_bytes(key[: len(key) // 2])
    elif damage == "empty_master_key":
        (keys / "master.key").write_bytes(b"")
    elif damage == "missing_keys_dir":
        shutil.rmtree(keys)
    else:
        sealed = (ca_dir / "ca-key.sealed").read_bytes()
        (ca_dir / "ca-key.sealed").write_bytes(sealed[:40])
    out = keys_cli.run(
        "card", "issue", "--org", "ORG1", "--user-id", uid, "--passcode-stdin", stdin=PASSCODE
    )
    assert out.returncode == 9, out.stderr
    assert out.error["code"] == "data_dir_damaged"
    assert message in out.error["message"]
    with sqlite3.connect(keys_cli.database_url.removeprefix("sqlite:///")) as conn:
        assert conn.execute("SELECT count(*) FROM cards").fetchone() == (0,)


def test_database_from_a_newer_cardvault_is_refused(cli: Cli, rt: Runtime) -> None:
    with rt.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    for args in (("card", "show", "CV0000000000"), ("serve",)):
        out = cli.run(*args)
        assert out.returncode == 9, (args, out.stderr)
        assert out.error["code"] == "database_newer"
        assert "ffffffffffff" in out.error["message"]
        assert "newer cardvault" in out.error["message"]
    with pytest.raises(db.DatabaseNewer):
        db.upgrade(rt.engine)
    assert db.current_revision(rt.engine) == "ffffffffffff"


def _openssl_ca(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}-key.pem", folder / f"{name}-cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}/O=Tests",
            "-days", "30", "-sha256",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def test_ca_certificate_that_does_not_match_its_key_is_refused(
    keys_cli: Cli, tmp_path: Path
) -> None:
    key_a, cert_a = _openssl_ca(tmp_path, "Operator CA A")
    key_b, _ = _openssl_ca(tmp_path, "Operator CA B")
    ca_files = keys_cli.data_dir / "ca"
    before = {p.name: p.read_bytes() for p in ca_files.iterdir()}
    bad = keys_cli.run(
        "ca", "init", "--import-cert", str(cert_a), "--import-key", str(key_b), "--force"
    )
    assert bad.returncode == 2
    assert bad.error["message"] == "The CA certificate does not match its key."
    assert {p.name: p.read_bytes() for p in ca_files.iterdir()} == before
    good = keys_cli.run(
        "ca", "init", "--import-cert", str(cert_a), "--import-key", str(key_a), "--force"
    )
    assert good.ok().json["subject"] == "O=Tests,CN=Operator CA A"
    assert keys_cli.run("ca", "export").ok().json["pem"] == cert_a.read_text()


# -- serve refuses to start sealed ------------------------------------------------------


def _wait_for_health(proc: subprocess.Popen[str], port: int, ca_file: Path) -> dict[str, object]:
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + 30
    with httpx.Client(verify=context, timeout=2) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited {proc.returncode}: {proc.stderr.read()}")  # type: ignore[union-attr]
            try:
                answer = client.get(f"https://localhost:{port}/api/v1/health")
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            assert answer.status_code == 200
            data: dict[str, object] = answer.json()
            return data
    raise AssertionError("serve did not answer within 30 s")


def test_serve_refuses_to_start_sealed_and_starts_after_unseal(
    cli: Cli, rt: Runtime, operator: Actor
) -> None:
    a.local_network(rt, operator)  # the health check comes from loopback
    tls = cli.data_dir / "tls"
    tls.mkdir(mode=0o700)
    cert, key = development_certificate(["localhost"])
    (tls / "cert.pem").write_bytes(cert)
    (tls / "key.pem").write_bytes(key)
    shares = cli.run("keys", "split", "--shares", "3", "--threshold", "2").ok().json["shares"]
    port = str(free_port())
    sealed = cli.run("serve", CARDVAULT_PORT=port, timeout=30)
    assert sealed.returncode == 7
    assert sealed.error["code"] == "sealed"
    assert "cardvault unseal" in sealed.error["remedy"]
    cli.run("unseal", "--shares-stdin", stdin="\n".join(shares[:2]) + "\n").ok()
    unsealed = default_runtime_dir(cli.data_dir)
    assert (unsealed / "master.key").is_file()
    proc = cli.popen("serve", CARDVAULT_PORT=port)
    try:
        health = _wait_for_health(proc, int(port), tls / "cert.pem")
        assert health["status"] == "ok"
        assert health["sealed"] is False
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert cli.run("seal").ok().json == {"sealed": True}
    assert not unsealed.exists()  # no empty folder left behind in /dev/shm
    assert cli.run("serve", CARDVAULT_PORT=port, timeout=30).returncode == 7


# -- the external-CA path ---------------------------------------------------------------


def _sign_csr(csr: Path, ca_key: Path, ca_cert: Path, usage: str, out: Path) -> Path:
    ext = out.with_suffix(".ext")
    lines = ["basicConstraints=critical,CA:FALSE"]
    if usage == "authentication":
        lines += ["keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth"]
    else:
        lines += ["keyUsage=critical,nonRepudiation"]
    ext.write_text("\n".join(lines) + "\n")
    subprocess.run(
        [
            "openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey",
            str(ca_key), "-CAcreateserial", "-days", "30", "-sha256", "-extfile", str(ext),
            "-out", str(out),
        ],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def test_external_ca_path_end_to_end(
    cli: Cli, rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    f.org(rt, operator)
    uid = f.person(rt, operator, "ORG1")
    issued = cli.run(
        "card", "issue", "--org", "ORG1", "--user-id", uid, "--algorithm", "ecp256",
        "--external-ca", "--passcode-stdin", stdin=PASSCODE,
    ).ok().json  # fmt: skip
    serial = issued["serial"]
    assert issued["certificates"] == []
    assert {c["usage"] for c in issued["csrs"]} == {"authentication", "content_commitment"}
    ca_key, ca_cert = _openssl_ca(tmp_path, "External CA")
    pems = {
        "authentication": cli.run("ca", "export-csr", serial, "authentication").ok().json["pem"],
        "content-commitment": next(
            c["pem"] for c in issued["csrs"] if c["usage"] == "content_commitment"
        ),
    }
    signed = {}
    for usage, pem in pems.items():
        csr = tmp_path / f"{usage}.csr"
        csr.write_text(pem)
        signed[usage] = _sign_csr(csr, ca_key, ca_cert, usage, tmp_path / f"{usage}.pem")

    wrong = cli.run(
        "ca", "import-cert", serial, "content-commitment", str(signed["authentication"])
    )
    assert wrong.returncode == 2
    assert "different key" in wrong.error["message"]
    assert _count(rt, Certificate) == 0

    for usage, cert in signed.items():
        cli.run("ca", "import-cert", serial, usage, str(cert)).ok()

    view = cli.run("card", "show", serial).ok().json
    assert view["pending_csrs"] == []
    certs = {c["usage"]: c for c in view["certificates"]}
    assert set(certs) == {"authentication", "content_commitment"}
    assert {c["issuer"] for c in certs.values()} == {"O=Tests,CN=External CA"}
    for usage, cert in signed.items():
        verified = subprocess.run(
            ["openssl", "verify", "-CAfile", str(ca_cert), str(cert)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert verified.returncode == 0, (usage, verified.stderr)
    with rt.db() as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.occurred_at)))
    assert actions.count("card.certificate_imported") == 2
