"""The floor under bench/pcsc.py: one ``pkcs11-tool`` 9A signature against the applet
answering in-process on this PC (no connector, no network, no service).

It is what OpenSC and pcscd cost by themselves, so it says how close to the API signature
a PC/SC signature can get at all on this machine.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the checkout's tests.support

from tests.support import pcsc_stack as st  # noqa: E402
from tests.support.piv_fakes import DEFAULT_PIN  # noqa: E402
from tests.support.piv_pcsc import SimulatedCard  # noqa: E402

from cardvault.card.piv import ATR, Algorithm, ObjectId, Slot, objects  # noqa: E402
from cardvault.clients.connector.vpcd import VpcdLink  # noqa: E402

__all__ = ["floor_signature"]


def floor_signature(message: Path, runs: int) -> float:
    """Median wall time of a 9A ``pkcs11-tool --login --sign`` on a card answered locally."""
    with _local_card():
        slot = str(st.token_slot())
        sign = [
            *("pkcs11-tool", "--module", st.PKCS11, "--slot", slot, "--login"),
            *("--pin", DEFAULT_PIN.decode(), "--sign", "--id", "01", "-m", "SHA256-RSA-PKCS"),
            *("-i", str(message), "-o", str(message.with_suffix(".floor.sig"))),
        ]
        st.run(*sign)  # warm up, as the paired measurement does
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            st.run(*sign)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextmanager
def _local_card() -> Iterator[None]:
    simulated = _card_with_a_9a_key()
    st.wait_until_reader_free()
    link = VpcdLink(relay=simulated.relay, atr=ATR, on_power=simulated.power)
    thread = threading.Thread(target=link.serve_forever, daemon=True)
    thread.start()
    try:
        st.wait_for(st.card_present, timeout=30, what="the local card in the reader")
        yield
    finally:
        link.close()
        thread.join(timeout=5)
        st.wait_for(lambda: not st.card_present(), timeout=10, what="the local card to leave")


def _card_with_a_9a_key() -> SimulatedCard:
    """OpenSC shows a key only with a certificate: any certificate of that public key."""
    simulated = SimulatedCard()
    card = simulated.card
    spki = card.ports.generate_key(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048)
    card.state = card.state.with_key(Slot.PIV_AUTHENTICATION, Algorithm.RSA2048)
    issuer = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "cardvault bench floor")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(serialization.load_der_public_key(spki))  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(issuer, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    container = objects.certificate_container(der)
    card.state = card.state.with_object(ObjectId.CERT_PIV_AUTHENTICATION, container)
    return simulated
