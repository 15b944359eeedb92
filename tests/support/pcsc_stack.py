"""The whole PC/SC stack for end-to-end tests and the benchmark: pcscd, a running cardvault
service (``cardvault serve`` as its own process, over TLS), the identity agent and its
connector as processes, and the real tools (yubico-piv-tool, OpenSC, OpenSSL).

Only one pcscd can run on a machine, and other engineers' tests use it too: everything here
runs under an exclusive ``flock`` on /tmp/cardvault-pcsc.lock, reuses a running pcscd (or
starts ``pcscd --foreground`` and stops it by PID), and uses vpcd slot 0 (port 35963).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp
import pytest
from cryptography import x509

from cardvault.config import Settings
from cardvault.crypto.tls import development_certificate
from cardvault.services.cards import methods
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime, open_runtime
from tests.support import factories as f
from tests.support import pcsc_lock
from tests.support.databases import REQUIRE_PG, fresh_postgres_database, postgres_reachable
from tests.support.live_server import free_port
from tests.support.processes import FAST_KDF

LOCK = Path("/tmp/cardvault-pcsc.lock")
PID_FILE = Path("/run/pcscd/pcscd.pid")
READER = "Virtual PCD 00 00"
VPCD_PORT = 35963
PKCS11 = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
TOOLS = ("pcscd", "opensc-tool", "pkcs11-tool", "yubico-piv-tool", "openssl", "curl")
DEFAULT_KEY = "010203040506070801020304050607080102030405060708"
BIN = Path(sys.executable).parent
ORG = "PCSC"
STRONG_PASSCODE = "correct horse battery staple 42"


# -- waiting and pcscd ---------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms; a TimeoutError names ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout} s")
        time.sleep(0.05)


def readers() -> str:
    result = subprocess.run(["opensc-tool", "-l"], capture_output=True, text=True, check=False)
    return result.stdout


def card_present(reader: str = READER) -> bool:
    return any(line.split()[1:2] == ["Yes"] and reader in line for line in readers().splitlines())


def wait_until_reader_free(timeout: float = 600) -> None:
    """Slot 0 must be empty before our card goes in: a test run without the lock (an older
    checkout) may still hold it; vpcd then ignores us until that card leaves."""
    wait_for(lambda: not card_present(), timeout=timeout, what=f"{READER} to be free")


def running_pcscd() -> int | None:
    """The PID of the machine's pcscd, or None (no PID file, no such process, or a zombie
    that a crashed test left behind and that would never answer)."""
    try:
        pid = int(PID_FILE.read_text().strip())
        os.kill(pid, 0)
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, ValueError):
        return None
    return None if "State:\tZ" in status else pid


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@contextmanager
def exclusive_pcsc() -> Iterator[None]:
    """Hold the machine's PC/SC lock for as long as the context lasts (once per process:
    a second open of the file in the same test session would wait for itself forever)."""
    with pcsc_lock.exclusive():
        yield


@contextmanager
def pcscd_running() -> Iterator[None]:
    """pcscd with the vpcd reader: a running one is reused, else started and stopped by PID."""
    if running_pcscd() is not None:
        wait_for(lambda: READER in readers(), timeout=10, what="the vpcd reader")
        yield
        return
    process = subprocess.Popen(["pcscd", "--foreground"], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: READER in readers(), timeout=10, what="the vpcd reader")
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


# -- tools ---------------------------------------------------------------------------------------


#: a tool may wait for pcscd and the vpcd link on a loaded CI machine: 120 s, not 60
TOOL_TIMEOUT = 120


def run(*args: str, env: dict[str, str] | None = None, check: bool = True, stdin: str = "") -> str:
    """Run a tool; its stdout and stderr together, or an AssertionError saying why it failed."""
    result = subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=TOOL_TIMEOUT,
    )
    output = result.stdout + result.stderr
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{output}")
    return output


def ykpiv(*args: str, check: bool = True) -> str:
    return run("yubico-piv-tool", "-r", READER, *args, check=check)


def pkcs11(*args: str, check: bool = True) -> str:
    return run("pkcs11-tool", "--module", PKCS11, "--slot", str(token_slot()), *args, check=check)


def token_slot(reader: str = READER) -> int:
    """The PKCS#11 slot id of the reader (other engineers may have cards in other readers)."""
    listing = run("pkcs11-tool", "--module", PKCS11, "-L")
    found = re.search(rf"Slot \d+ \((0x[0-9a-f]+)\): {re.escape(reader)}\n", listing)
    assert found, listing
    return int(found[1], 16)


def token_serial(reader: str = READER) -> str:
    listing = run("pkcs11-tool", "--module", PKCS11, "-L")
    section = listing.split(f": {reader}\n", 1)[1]
    found = re.search(r"serial num\s*:\s*(\S+)", section)
    assert found, listing
    return found[1]


def key_uri(key_id: str, pin: str, reader: str = READER) -> str:
    return f"pkcs11:serial={token_serial(reader)};id=%{key_id};type=private;pin-value={pin}"


@contextmanager
def database(kind: str, scratch: Path) -> Iterator[str]:
    """A SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{scratch / 'cardvault.db'}"
        return
    with fresh_postgres_database("cvpcsc") as url:
        yield url


@contextmanager
def service_on(kind: str, key_template: Path, scratch: Path) -> Iterator[Service]:
    """A running service on a fresh database of ``kind`` (``sqlite`` or ``postgresql``), its
    data directory a copy of ``key_template``; stopped afterwards. Skipped when PostgreSQL
    does not answer (failed when it is required)."""
    data = scratch / "data"
    shutil.copytree(key_template, data)
    if kind == "postgresql" and not postgres_reachable():
        if REQUIRE_PG:
            pytest.fail("PostgreSQL is required but does not answer")
        pytest.skip("PostgreSQL is not reachable")
    with database(kind, scratch) as url:
        service = start_service(data, env={**FAST_KDF, "CARDVAULT_DATABASE_URL": url})
        try:
            yield service
        finally:
            service.stop()


# -- the service ---------------------------------------------------------------------------------


@dataclass
class Service:
    """``cardvault serve`` in its own process; ``rt`` is a runtime on the same data."""

    settings: Settings
    rt: Runtime
    url: str
    ca_file: Path
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def cardvault(self, *args: str) -> str:
        """The operator's ``cardvault`` command on this service's data and database."""
        return run(
            str(BIN / "cardvault"), "--data-dir", str(self.settings.data_dir), *args, env=self.env
        )

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.rt.close()


def start_service(data_dir: Path, *, env: dict[str, str]) -> Service:
    """Migrate, then serve over TLS on a free port; returns once /health answers."""
    cert, key = development_certificate(["localhost"])
    tls = data_dir / "tls"
    tls.mkdir(exist_ok=True)
    (tls / "cert.pem").write_bytes(cert)
    (tls / "key.pem").write_bytes(key)
    port = free_port()
    server_env = {**os.environ, **env, "CARDVAULT_HOST": "127.0.0.1", "CARDVAULT_PORT": str(port)}
    settings = Settings(
        data_dir=data_dir,
        **{k.removeprefix("CARDVAULT_").lower(): v for k, v in env.items()},  # type: ignore[arg-type]
    )
    rt = open_runtime(settings, migrate=True)
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "cardvault"), "--data-dir", str(data_dir), "serve"],
            env=server_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    service = Service(
        settings=settings,
        rt=rt,
        url=f"https://localhost:{port}",
        ca_file=tls / "cert.pem",
        process=process,
        log=log,
        env=server_env,
    )
    try:
        wait_for(lambda: _healthy(service), timeout=30, what="cardvault serve")
    except BaseException:
        service.stop()
        raise
    return service


def _healthy(service: Service) -> bool:
    if service.process.poll() is not None:
        raise AssertionError(f"cardvault serve exited:\n{service.log.read_text()}")
    try:
        answer = httpx.get(f"{service.url}/healthz", verify=service.tls(), timeout=2)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


# -- people --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Person:
    user_id: str
    email: str
    totp_secret: str = field(default="", repr=False)
    passcode: str = field(default=STRONG_PASSCODE, repr=False)

    def code(self, offset: int = 0) -> str:
        return str(pyotp.TOTP(self.totp_secret).at(time.time() + offset))


def create_ra(rt: Runtime, operator: Actor) -> Person:
    """An organisation for local clients and an RA user with an active card and TOTP."""
    directory.create_organisation(
        rt, operator, code=ORG, name="PC/SC test trust", networks=["127.0.0.0/8", "::1/128"]
    )
    email = "rana.admin@example.org"
    card = f.active_card(rt, operator, ORG, forename="Rana", surname="Admin", email=email)
    directory.grant_role(rt, operator, user_id=card.user_id, org_code=ORG, role="ra_agent")
    totp = methods.add_totp(rt, operator, serial=card.serial, org_code=ORG)
    return Person(user_id=card.user_id, email=email, totp_secret=totp.secret)


def create_holder(rt: Runtime, operator: Actor, forename: str = "Hana") -> Person:
    email = f"{forename.lower()}.holder@example.org"
    uid = f.person(rt, operator, ORG, forename=forename, surname="Holder", email=email)
    return Person(user_id=uid, email=email)


# -- the agent -----------------------------------------------------------------------------------


@dataclass
class Agent:
    """``cardvault-agent`` as a person runs it, with its own state directory."""

    service: Service
    state_dir: Path

    def base(self) -> list[str]:
        return [
            str(BIN / "cardvault-agent"),
            "--server",
            self.service.url,
            "--ca-file",
            str(self.service.ca_file),
            "--state-dir",
            str(self.state_dir),
        ]

    def run(self, *args: str, stdin: str = "", check: bool = True) -> str:
        return run(*self.base(), *args, stdin=stdin, check=check)

    def login(self, person: Person, *extra: str, offset: int = 0) -> str:
        return self.run(
            "login",
            "--email",
            person.email,
            "--passcode-stdin",
            "--totp",
            person.code(offset),
            *extra,
            stdin=person.passcode + "\n",
        )

    def connector(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        wait_until_reader_free()
        with log.open("wb") as out:
            return subprocess.Popen(
                [*self.base(), "connector", "--poll", "1", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def stop(process: subprocess.Popen[bytes], *, timeout: float = 15) -> int:
    """SIGTERM by PID (as Ctrl-C would), then wait."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


# -- issuance with the real tools ------------------------------------------------------------


def personalise(
    service: Service, directory: Path, *, serial: str, new_key: str, pin: str, puk: str
) -> None:
    """What a card management system does with a blank card, with yubico-piv-tool, OpenSC and
    OpenSSL: management key, keys in 9A and 9C, a certificate from cardvault's CA via a CSR
    the card signs (9A, `cardvault ca certify`) and a self-signed one (9C), then PIN and PUK."""
    ykpiv(f"--key={DEFAULT_KEY}", "-a", "set-mgm-key", f"--new-key={new_key}")
    for slot, algorithm in (("9a", "RSA2048"), ("9c", "ECCP256")):
        out = str(directory / f"{slot}.pem")
        ykpiv(f"--key={new_key}", "-a", "generate", "-s", slot, "-A", algorithm, "-o", out)
    certificate_from_the_ca(service, directory, serial)
    self_signed(directory, "9c", "02")
    for slot in ("9a", "9c"):
        cert = str(directory / f"{slot}.crt")
        ykpiv(f"--key={new_key}", "-a", "import-certificate", "-s", slot, "-i", cert)
    ykpiv("-a", "change-pin", "-P", "123456", "-N", pin)
    ykpiv("-a", "change-puk", "-P", "12345678", "-N", puk)


def engine_env(directory: Path, slot: str) -> dict[str, str]:
    """OpenSC finds a key without a certificate through PIV_<slot>_KEY (its public key)."""
    pem, der = directory / f"{slot}.pem", directory / f"{slot}.der"
    run("openssl", "pkey", "-pubin", "-in", str(pem), "-outform", "DER", "-out", str(der))
    return {
        "PATH": "/usr/bin:/bin",
        f"PIV_{slot.upper()}_KEY": str(der),
        "OPENSSL_CONF": "/dev/null",
    }


def certificate_from_the_ca(service: Service, directory: Path, serial: str) -> None:
    """9A: the card signs a CSR (OpenSSL's pkcs11 engine through OpenSC); the operator has
    cardvault's CA certify it (`cardvault ca certify`), as a card management system would."""
    csr_path = directory / "9a.csr"
    uri = key_uri("01", "123456")
    run(
        "openssl",
        "req",
        "-new",
        "-engine",
        "pkcs11",
        "-keyform",
        "engine",
        "-key",
        uri,
        "-subj",
        "/CN=Hana Holder",
        "-out",
        str(csr_path),
        env=engine_env(directory, "9a"),
    )
    csr = x509.load_pem_x509_csr(csr_path.read_bytes())
    assert csr.is_signature_valid, "the card's key signed the request"
    cert = directory / "9a.crt"
    service.cardvault("ca", "certify", "--card", serial, "--csr", str(csr_path), "--out", str(cert))
    (directory / "ca.pem").write_text(service.cardvault("ca", "export"))


def self_signed(directory: Path, slot: str, key_id: str, *, name: str = "Hana Holder") -> Path:
    """Self-signed through OpenSC (the notes' recipe: the card signs its own certificate);
    9C asks for the PIN again for the signature (PIN always)."""
    out = directory / f"{slot}.crt"
    run(
        *("openssl", "req", "-new", "-x509", "-engine", "pkcs11", "-keyform", "engine"),
        *("-key", key_uri(key_id, "123456"), "-subj", f"/CN={name} {slot}", "-days", "30"),
        *("-out", str(out)),
        env=engine_env(directory, slot),
        stdin="123456\n",
    )
    return out


# -- a TLS server that asks for a client certificate ------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TlsServer:
    """``openssl s_server`` on localhost, trusting only a CA, requiring a client certificate."""

    port: int
    cert: Path  # its own (self-signed) certificate, for curl's --cacert

    def fetch(self, *curl: str, check: bool = True) -> str:
        """The server's status page (``-www``) through curl, with the options given."""
        url = f"https://localhost:{self.port}/"
        return run("curl", "-sS", "--cacert", str(self.cert), *curl, url, check=check)

    def fetch_with_card(self, client_cert: Path, pin: str) -> str:
        """The page, the client authenticating with the card's 9A key through OpenSSL's
        pkcs11 engine and OpenSC."""
        return self.fetch(
            *("--engine", "pkcs11", "--key-type", "ENG", "--key", key_uri("01", pin)),
            *("--cert", str(client_cert)),
        )


@contextmanager
def tls_server(folder: Path, ca_pem: Path, *, crl: Path | None = None) -> Iterator[TlsServer]:
    """A TLS server that accepts only client certificates ``ca_pem`` issued (and, with
    ``crl``, not revoked); ``-www`` answers with a page naming the client certificate.
    Yields once it listens; its log is added to a failure inside the block."""
    key, cert = folder / "server.key", folder / "server.pem"
    run(
        *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
        *("-nodes", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
        *("-addext", "subjectAltName=DNS:localhost", "-days", "1"),
    )
    port = free_port()
    checks = ["-crl_check", "-CRL", str(crl)] if crl is not None else []
    server = subprocess.Popen(
        [
            *("openssl", "s_server", "-accept", str(port), "-cert", str(cert), "-key", str(key)),
            *("-CAfile", str(ca_pem), "-Verify", "1", "-verify_return_error", *checks, "-www"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.5)
        yield TlsServer(port=port, cert=cert)
    except AssertionError as failure:
        server.terminate()
        raise AssertionError(f"{failure}\n{server.communicate(timeout=10)[0]}") from failure
    finally:
        if server.poll() is None:
            server.terminate()
            server.communicate(timeout=10)
