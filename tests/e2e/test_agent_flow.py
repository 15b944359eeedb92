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
