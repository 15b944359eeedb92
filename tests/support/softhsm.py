"""A SoftHSM2 token for the pkcs11 master-key provider (Debian ``softhsm2``; DESIGN §3.1).

SoftHSM reads its configuration and finds its tokens when the PKCS#11 library is first
initialised in a process, so the tokens are made once per test process, before any test
loads the library; tests keep apart by key label.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
TOKEN = "cardvault-test"
OTHER_TOKEN = "cardvault-other"
PIN = "4711-test-pin"


@dataclass(frozen=True, kw_only=True)
class SoftHsm:
    module: Path
    token: str
    other_token: str
    pin: str

    def env(self, key_label: str) -> dict[str, str]:
        """Settings for a service on this token, as ``CARDVAULT_*`` variables."""
        return {
            "CARDVAULT_KEY_PROVIDER": "pkcs11",
            "CARDVAULT_PKCS11_MODULE": str(self.module),
            "CARDVAULT_PKCS11_TOKEN_LABEL": self.token,
            "CARDVAULT_PKCS11_KEY_LABEL": key_label,
            "CARDVAULT_PKCS11_PIN": self.pin,
            "SOFTHSM2_CONF": os.environ["SOFTHSM2_CONF"],
        }


def start(root: Path) -> SoftHsm:
    if not MODULE.exists():
        raise RuntimeError(
            f"{MODULE} is missing: install Debian's softhsm2 (scripts/install-system-deps)"
        )
    tokens = root / "tokens"
    tokens.mkdir(mode=0o700)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    for label in (TOKEN, OTHER_TOKEN):
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                PIN,
                "--so-pin",
                secrets.token_hex(8),
            ],
            check=True,
            capture_output=True,
        )
    return SoftHsm(module=MODULE, token=TOKEN, other_token=OTHER_TOKEN, pin=PIN)


def key_label() -> str:
    return f"test-{secrets.token_hex(6)}"
