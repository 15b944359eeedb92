"""PC/SC tier for HR cards: the real pcscd with the vsmartcard vpcd driver, a test card
that connects to vpcd's second reader ("Virtual PCD 00 01", port 35964) as a contactless
card, and the agent reading it through pyscard.

Only one pcscd serves a machine, and other test sessions (the PIV tests) use it too: this
module's tests hold the exclusive lock on /tmp/cardvault-pcsc.lock
(tests/support/pcsc_lock.py), reuse a running pcscd, and start one (and stop it by its PID
before letting go of the lock) only when none runs. The HR card
stays on slot 1 so that it never meets the PIV card on slot 0.

A second, private pcscd (its own mount namespace, its own /run/pcscd and readers) is
started for the failures that would disturb the shared one: no reader at all, and the
reader going away while the agent waits.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.support import pcsc_lock as pcsc_lock_holder
from tests.support.pcsc_stack import running_pcscd, wait_for

LOCK_WAIT = 900.0
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
READER = "Virtual PCD 00 01"
PRIVATE_CHANNEL = 0x7F00  # private readers on ports 32512/32513: below the ephemeral range


def readers() -> list[str]:
    from smartcard import scard

    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if rv != scard.SCARD_S_SUCCESS:
        return []
    try:
        rv, names = scard.SCardListReaders(ctx, [])
        return list(names) if rv == scard.SCARD_S_SUCCESS else []
    finally:
        scard.SCardReleaseContext(ctx)


def card_on(reader: str) -> bool:
    from smartcard import scard

    rv, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        rv, states = scard.SCardGetStatusChange(ctx, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        return rv == scard.SCARD_S_SUCCESS and bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(ctx)


def listening(port: int) -> bool:
    """vpcd listens on its port once pcscd has created the reader (state 0A: LISTEN)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and local.endswith(f":{port:04X}"):
                    return True
    return False


@pytest.fixture(scope="module")
def pcsc_lock() -> Iterator[None]:
    """Exclusive use of the machine's PC/SC stack while this module's tests run."""
    try:
        with pcsc_lock_holder.exclusive(timeout=LOCK_WAIT):
            yield
    except TimeoutError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def pcscd(pcsc_lock: None) -> Iterator[None]:
    """The shared pcscd with vpcd's readers: reused when running, else started here and
    stopped (by its PID) before the lock is released."""
    missing = [p for p in ("pcscd",) if shutil.which(p) is None]
    if missing or not VPCD_DRIVER.exists():
        pytest.fail("pcscd or vsmartcard-vpcd is missing: run scripts/install-system-deps")
    if running_pcscd() is not None:
        wait_for(lambda: READER in readers(), timeout=10, what="the vpcd reader")
        yield
        return
    process = subprocess.Popen(
        ["pcscd", "--foreground"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for(lambda: READER in readers(), timeout=10, what="the vpcd reader")
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


@pytest.fixture
def reader(pcscd: None) -> str:
    """Slot 1, empty: a test that leaves a card on it fails here for the next one."""
    wait_for(lambda: not card_on(READER), timeout=5, what=f"{READER} to be empty")
    return READER


@contextmanager
def private_pcscd(directory: Path, *, with_readers: bool) -> Iterator[tuple[str, int]]:
    """A pcscd of our own, invisible to the shared one: yields (socket path, pid).

    Clients reach it with PCSCLITE_CSOCK_NAME (read once per process: use subprocesses)."""
    conf = directory / "reader.conf.d"
    conf.mkdir()
    if with_readers:
        (conf / "private-vpcd").write_text(
            'FRIENDLYNAME "Private PCD"\n'
            f"DEVICENAME   /dev/null:0x{PRIVATE_CHANNEL:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{PRIVATE_CHANNEL:04X}\n"
        )
    run = directory / "run"
    run.mkdir()
    script = (  # our directory in place of /run/pcscd, for this pcscd only
        f"mkdir -p /run/pcscd && mount --bind {run} /run/pcscd && exec pcscd --foreground -c {conf}"
    )
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket_path = str(run / "pcscd.comm")
    try:
        wait_for(lambda: Path(socket_path).exists(), timeout=10, what="the private pcscd")
        if with_readers:
            wait_for(lambda: listening(PRIVATE_CHANNEL), timeout=10, what="the private readers")
        yield socket_path, process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
