"""Unmodified OpenSC, yubico-piv-tool and openssl against the virtual PIV card."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.pcsc_stack import DEFAULT_KEY, READER, pkcs11, run, self_signed, ykpiv
from tests.support.piv_pcsc import SimulatedCard

pytestmark = pytest.mark.pcsc

NEW_KEY = "8d6e2f41a3c59b07d1e4f2a6c38b5d90e7a1f4c26b3d8e05"
PIN = "24681357"
PUK = "97531864"


@dataclass(frozen=True)
class Personalised:
    card: SimulatedCard
    directory: Path

    def public_key(self, slot: str) -> Path:
        return self.directory / f"{slot}.pem"


@pytest.fixture(scope="module")
def personalised(
    virtual_card: SimulatedCard, tmp_path_factory: pytest.TempPathFactory
) -> Personalised:
    """Issuance as a card management system does it, with yubico-piv-tool."""
    directory = tmp_path_factory.mktemp("piv")
    ykpiv(f"--key={DEFAULT_KEY}", "-a", "set-mgm-key", f"--new-key={NEW_KEY}")
    for slot, algorithm in (("9a", "RSA2048"), ("9c", "ECCP256")):
        ykpiv(f"--key={NEW_KEY}", "-a", "generate", "-s", slot, "-A", algorithm,
              "-o", str(directory / f"{slot}.pem"))  # fmt: skip
    for slot, key_id in (("9a", "01"), ("9c", "02")):
        cert = self_signed(directory, slot, key_id, name="cardvault")
        run("openssl", "x509", "-in", str(cert), "-noout", "-checkend", "0")
        ykpiv(f"--key={NEW_KEY}", "-a", "import-certificate", "-s", slot, "-i", str(cert))
    ykpiv("-a", "change-pin", "-P", "123456", "-N", PIN)
    ykpiv("-a", "change-puk", "-P", "12345678", "-N", PUK)
    return Personalised(card=virtual_card, directory=directory)


def test_opensc_recognises_a_piv_card(virtual_card: SimulatedCard) -> None:
    output = run("opensc-tool", "--reader", READER, "--name")
    assert "Personal Identity Verification Card" in output


def test_issuance_changed_the_management_key_and_the_default_is_refused(
    personalised: Personalised,
) -> None:
    assert not personalised.card.card.state.management_key_default
    output = ykpiv(f"--key={DEFAULT_KEY}", "-a", "generate", "-s", "9e", check=False)
    assert "authentication" in output.lower()
    assert personalised.card.card.state.key_algorithm(0x9E) is None  # type: ignore[arg-type]


def test_yubico_piv_tool_shows_both_keys(personalised: Personalised) -> None:
    status = ykpiv("-a", "status")
    assert re.search(r"Slot 9a:\s+Algorithm:\s+RSA2048", status)
    assert re.search(r"Slot 9c:\s+Algorithm:\s+ECCP256", status)
    assert "PIN tries left:\t3" in status or "PIN tries left: 3" in status


def test_pkcs11_lists_both_certificates(personalised: Personalised) -> None:
    objects = pkcs11("-O")
    assert objects.count("Certificate Object") == 2
    assert "cardvault 9a" in objects
    assert "cardvault 9c" in objects


def test_rsa_signature_in_9a_verifies_with_openssl(personalised: Personalised) -> None:
    directory = personalised.directory
    message, signature = directory / "message.txt", directory / "9a.sig"
    message.write_text("sign me with the authentication key\n")
    pkcs11("--login", "--pin", PIN, "--sign", "--id", "01", "-m", "SHA256-RSA-PKCS",
           "-i", str(message), "-o", str(signature))  # fmt: skip
    verified = run("openssl", "dgst", "-sha256", "-verify", str(personalised.public_key("9a")),
                   "-signature", str(signature), str(message))  # fmt: skip
    assert "Verified OK" in verified


def test_ecdsa_signature_in_9c_verifies_with_openssl(personalised: Personalised) -> None:
    directory = personalised.directory
    message, signature = directory / "document.txt", directory / "9c.sig"
    message.write_text("a document digest for the content-commitment key\n")
    pkcs11("--login", "--pin", PIN, "--sign", "--id", "02", "-m", "ECDSA-SHA256",
           "--signature-format", "openssl", "-i", str(message), "-o", str(signature))  # fmt: skip
    verified = run("openssl", "dgst", "-sha256", "-verify", str(personalised.public_key("9c")),
                   "-signature", str(signature), str(message))  # fmt: skip
    assert "Verified OK" in verified


def _status_words(output: str) -> list[tuple[str, str]]:
    found = re.finditer(r"SW1=0x([0-9a-f]{2}), SW2=0x([0-9a-f]{2})", output)
    return [(match[1], match[2]) for match in found]


def test_9c_needs_the_pin_before_every_signature(personalised: Personalised) -> None:
    pin = PIN.encode().hex()
    verify = f"00:20:00:80:08:{':'.join(pin[i : i + 2] for i in range(0, len(pin), 2))}"
    sign = "00:87:11:9C:26:7C:24:82:00:81:20:" + ":".join(["5A"] * 32)
    output = run("opensc-tool", "--reader", READER,
                 "-s", verify, "-s", sign, "-s", sign, "-s", verify, "-s", sign)  # fmt: skip
    assert _status_words(output) == [
        ("90", "00"), ("90", "00"), ("69", "82"), ("90", "00"), ("90", "00"),
    ]  # fmt: skip


def test_wrong_pin_gives_ckr_pin_incorrect_and_a_right_one_resets_the_count(
    personalised: Personalised,
) -> None:
    wrong = pkcs11("--login", "--pin", "11112222", "-O", check=False)
    assert "CKR_PIN_INCORRECT" in wrong
    assert personalised.card.card.state.pin_tries.left == 2
    pkcs11("--login", "--pin", PIN, "-O")
    assert personalised.card.card.state.pin_tries.left == 3
