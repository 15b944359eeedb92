"""The holder's flow from the README, with real processes over real TLS:
init → serve → agent login → relying party authentication → content-commitment signature."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from tests.support.live_server import free_port
from tests.support.processes import FAST_KDF, background, run

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> dict[str, object]:
    env = {**FAST_KDF, "CARDVAULT_DATA_DIR": str(tmp_path / "data")}
    run("cardvault", "init", "--demo", env=env)
    creds = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
    return {"env": env, "creds": creds, "data": tmp_path / "data"}


def test_login_authenticate_sign_logout(demo: dict[str, object], tmp_path: Path) -> None:
    env: dict[str, str] = demo["env"]  # type: ignore[assignment]
    data: Path = demo["data"]  # type: ignore[assignment]
    alice = demo["creds"]["card_holder"]  # type: ignore[index]
    port, rp_port = free_port(), free_port()
    server_env = {**env, "CARDVAULT_PORT": str(port)}
    tls = str(data / "tls" / "cert.pem")
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_text(run("cardvault", "ca", "export", env=env).stdout)
    # as in the README: the service and its CA are given at login only
    agent_env = {"CARDVAULT_AGENT_STATE_DIR": str(tmp_path / "agent")}
    with (
        background(
            "cardvault",
            "serve",
            env=server_env,
            health=f"https://localhost:{port}/api/v1/health",
            verify=tls,
        ),
        background(
            "cardvault",
            "rp",
            "serve",
            "--ca-file",
            str(ca_pem),
            "--cardvault-url",
            f"https://localhost:{port}",
            "--cardvault-ca-file",
            tls,
            "--port",
            str(rp_port),
            env=env,
            health=f"http://localhost:{rp_port}/login",
        ),
    ):
        login = ("--server", f"https://localhost:{port}", "--ca-file", tls, "--json", "login")
        wrong = run(
            "cardvault-agent", *login, "--email", alice["email"], "--passcode-stdin",
            env=agent_env, stdin="not-her-passcode\n", check=False,
        )  # fmt: skip
        assert wrong.returncode == 1
        assert json.loads(wrong.stderr)["error"]["status"] == 401
        code = pyotp.TOTP(alice["totp_secret"]).now()
        out = run(
            "cardvault-agent",
            "--server",
            f"https://localhost:{port}",
            "--ca-file",
            tls,
            "--json",
            "login",
            "--email",
            alice["email"],
            "--passcode-stdin",
            "--totp",
            code,
            env=agent_env,
            stdin=alice["passcode"] + "\n",
        )
        state_file = Path(json.loads(out.stdout)["state_file"])
        assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600
        assert alice["passcode"] not in state_file.read_text()
        status = json.loads(run("cardvault-agent", "--json", "status", env=agent_env).stdout)
        assert status["card_serial"] == alice["card_serial"]
        ticket = json.loads(
            run(
                "cardvault-agent",
                "--json",
                "authenticate",
                "--rp",
                f"http://localhost:{rp_port}/login",
                env=agent_env,
            ).stdout
        )
        assert ticket["user_id"] == alice["user_id"]
        shown = json.loads(
            run("cardvault", "--json", "card", "show", alice["card_serial"], env=env).stdout
        )
        subjects = {c["subject"] for c in shown["certificates"]}
        assert ticket["subject"] in subjects  # as card show prints it: serialNumber=, not 2.5.4.5=
        assert f"serialNumber={alice['user_id']}" in ticket["subject"]
        assert ticket["ticket"].count(".") == 2
        digest = hashlib.sha256(b"discharge letter").hexdigest()
        without = run(
            "cardvault-agent",
            "sign",
            "--digest-sha256",
            digest,
            "--key",
            "content-commitment",
            env=agent_env,
            check=False,
        )
        assert without.returncode != 0
        assert "passcode" in without.stderr.lower()
        signed = json.loads(
            run(
                "cardvault-agent",
                "--json",
                "sign",
                "--digest-sha256",
                digest,
                "--key",
                "content-commitment",
                "--passcode-stdin",
                env=agent_env,
                stdin=alice["passcode"] + "\n",
            ).stdout
        )
        cert = x509.load_pem_x509_certificate(signed["certificate"].encode())
        cert.public_key().verify(  # type: ignore[union-attr, call-arg]
            base64.b64decode(signed["signature"]),
            b"discharge letter",
            padding.PKCS1v15(),
            hashes.SHA256(),
        )  # type: ignore[arg-type]
        # renewal in the signed-in session: new keys, new certificates, same passcode
        renewed = json.loads(run("cardvault-agent", "--json", "renew", env=agent_env).stdout)
        assert renewed["serial"] == alice["card_serial"]
        assert renewed["new_keys"] is True
        fresh = {c["fingerprint_sha256"] for c in renewed["certificates"]}
        shown = json.loads(
            run("cardvault", "--json", "card", "show", alice["card_serial"], env=env).stdout
        )
        assert fresh <= {c["fingerprint_sha256"] for c in shown["certificates"]}
        resigned = json.loads(
            run(
                "cardvault-agent", "--json", "sign", "--digest-sha256", digest,
                "--key", "content-commitment", "--passcode-stdin",
                env=agent_env, stdin=alice["passcode"] + "\n",
            ).stdout
        )  # fmt: skip
        new_cert = x509.load_pem_x509_certificate(resigned["certificate"].encode())
        assert new_cert.fingerprint(hashes.SHA256()).hex() in fresh
        assert new_cert.public_key() != cert.public_key()
        run("cardvault-agent", "logout", env=agent_env)
        after = run("cardvault-agent", "status", env=agent_env, check=False)
        assert after.returncode != 0
        assert "not signed in" in after.stderr


def test_agent_refuses_passcode_as_argument_and_bad_digest(
    demo: dict[str, object], tmp_path: Path
) -> None:
    agent_env = {"CARDVAULT_AGENT_STATE_DIR": str(tmp_path / "agent")}
    out = run("cardvault-agent", "login", "--passcode", "secret", env=agent_env, check=False)
    assert out.returncode == 2
    assert "No such option" in out.stderr
    bad = run("cardvault-agent", "sign", "--digest-sha256", "abc", env=agent_env, check=False)
    assert bad.returncode != 0
    assert "64 hexadecimal digits" in bad.stderr


def _json_error(*args: str, env: dict[str, str], stdin: str = "") -> tuple[int, dict[str, object]]:
    done = run("cardvault-agent", "--json", *args, env=env, stdin=stdin, check=False)
    assert done.stdout == ""
    error = json.loads(done.stderr)["error"]
    assert isinstance(error, dict)
    return done.returncode, error


def test_agent_json_mode_prints_every_error_as_json(tmp_path: Path) -> None:
    env = {"CARDVAULT_AGENT_STATE_DIR": str(tmp_path / "agent")}
    login = ("login", "--email", "a@example.org", "--passcode-stdin")
    unused = f"https://localhost:{free_port()}"

    code, error = _json_error("status", env=env)
    assert (code, error["code"]) == (3, "not_signed_in")
    code, error = _json_error("login", "--passcode", "secret", env=env)
    assert (code, error["code"]) == (2, "usage")
    assert "No such option: --passcode" in str(error["message"])
    code, error = _json_error(*login, env=env, stdin="pw\n")
    assert (code, error["code"]) == (2, "invalid_input")
    assert "--server" in str(error["message"])
    missing_ca = str(tmp_path / "no-such-ca.pem")
    code, error = _json_error("--server", unused, "--ca-file", missing_ca, *login, env=env)
    assert (code, error["code"]) == (2, "invalid_input")
    assert "Cannot read the CA file" in str(error["message"])
    code, error = _json_error("--server", unused, *login, env=env, stdin="pw\n")
    assert (code, error["code"]) == (1, "agent_error")
    assert "Cannot reach cardvault" in str(error["message"])
