"""Where a sign-in's time goes: the server's busy samples sorted into parts.

With py-spy on the PATH (``pip install py-spy``; it needs ptrace rights) the running
``cardvault serve`` is sampled from outside, all threads, while the benchmark drives it:
TLS, HTTP, routing, thread hand-offs and the work itself. Without it, the same parts are
read from a cProfile of the service functions run in this process (no HTTP or TLS then, and
the line says so).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

#: (part, pattern on one frame): a sample goes to the part of the innermost frame that
#: matches any pattern, so the database work an audit append does counts as database work
Parts = tuple[tuple[str, str], ...]
PARTS: Parts = (
    ("KDF (Argon2id)", r"argon2|derive_key"),
    ("card signature", r"sign_digest"),
    ("audit head signature (Ed25519)", r"audit/heads\.py|signing_key|sign_ed25519"),
    ("transport key folder", r"transport/keys\.py"),
    ("envelopes (JOSE)", r"joserfc|crypto/envelope\.py|crypto/channel\.py"),
    ("master key seal/open", r"keystore/"),
    ("key slots, session wrap", r"crypto/keyslots|crypto/aead|crypto/_record"),
    ("database (SQLAlchemy, driver)", r"sqlalchemy|sqlite3|psycopg"),
    ("audit chain rows", r"services/audit/"),
    ("pydantic", r"pydantic"),
    ("TLS", r"ssl\.py|SSLObject"),
    ("HTTP server (uvicorn)", r"uvicorn|h11|httptools"),
    ("thread hand-off", r"anyio|threading\.py|concurrent/futures|queue\.py"),
    ("FastAPI/Starlette", r"fastapi|starlette"),
    ("cardvault, other", r"cardvault"),
)
_IDLE_LEAF = re.compile(r"^(Runner\.run|select|_worker|wait|sleep|Condition\.wait|get \(queue)")


def part_of(frames: Iterable[str], parts: Parts = PARTS) -> str:
    for frame in reversed(list(frames)):
        for name, pattern in parts:
            if re.search(pattern, frame):
                return name
    return "other"


def spy(pid: int, run: Callable[[], object], parts: Parts = PARTS) -> Counter[str] | None:
    """Busy samples of ``pid`` by part while ``run()`` runs; None without py-spy (``run()``
    runs all the same: the caller measures more than the samples around it)."""
    exe = shutil.which("py-spy")
    if exe is None:
        run()
        return None
    out = Path(tempfile.mkdtemp(prefix="cardvault-spy-")) / "samples.txt"
    proc = subprocess.Popen(
        [exe, "record", "-p", str(pid), "-r", "200", "-t", "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run()
    finally:
        proc.send_signal(2)  # SIGINT: py-spy writes what it has
        proc.wait(timeout=30)
    if not out.exists():
        return None
    found: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")[1:]  # the first is the thread
        if frames and not _IDLE_LEAF.search(frames[-1]):
            found[part_of(frames, parts)] += int(count)
    return found


def profiled(run: Callable[[], object]) -> Counter[str]:
    """Own time of the functions ``run()`` calls, by part (cProfile, this process)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.runcall(run)
    stats = pstats.Stats(profile)
    parts: Counter[str] = Counter()
    for (path, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        parts[part_of([f"{name} ({path})"])] += row[2]  # tottime
    return parts


def slowest(parts: Counter[str], how: str) -> str:
    total = sum(parts.values()) or 1
    top = ", ".join(f"{name} {n / total:.0%}" for name, n in parts.most_common(3))
    return f"slowest parts of a sign-in ({how}): {top}"
