"""Push latency: from the phone's approval to the PC's waiting sign-in completing.

Runs real service processes (``cardvault serve`` over TLS) and, in this process, asyncio
clients: many idle devices holding their event streams open (background load), one probe
device that answers challenges, and the PC side (sign-in, push, long-poll, factor).

For each sample: the PC signs in (passcode) and asks for a push; the probe device receives
the challenge on its stream; the PC's long-poll is waiting; the clock starts when the device
sends its approval and stops when ``/auth/factor`` has returned the card session.

Scenarios: N idle devices on one instance; the same with two instances through Redis (the
devices and the probe on instance B, the PC on instance A); and a ramp of N on one instance
until the median doubles. Prints numbers; it is a benchmark, not a test.

    .venv/bin/python bench/push.py [--samples 100] [--devices 1000] [--ramp 250,1000,2000,4000]

Background devices are inserted straight into the database (pairing 1,000 phones through
the API would only measure pairing); the probe device is paired through the service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import create_engine, text

from cardvault.config import Settings
from cardvault.crypto import device as dcrypto
from cardvault.crypto import envelope
from cardvault.crypto.tls import development_certificate
from cardvault.services.audit import signing_key as audit_key
from cardvault.services.cards import enrolment, issuance
from cardvault.services.devices import pairing
from cardvault.services.devices.channel import seal_totp
from cardvault.services.directory import registry as directory
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Actor, keystore_for, open_runtime
from cardvault.services.transport import keys as transport_keys
from cardvault.store.models import Device
from cardvault.store.types import new_id, utcnow

PASSCODE = "correct horse battery staple 42"
PG = os.environ.get("CARDVAULT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = "redis://127.0.0.1:6379/0"
CHEAP = {
    "CARDVAULT_ARGON2_TIME_COST": "1",
    "CARDVAULT_ARGON2_MEMORY_KIB": "64",
    "CARDVAULT_INSECURE_TEST_KDF": "true",
}


# --- set-up -----------------------------------------------------------------------------------


def database_url() -> str:
    base = PG.rsplit("/", 1)[0]
    name = f"cvbench_{secrets.token_hex(4)}"
    admin = create_engine(
        PG.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{base}/{name}"


@dataclass
class Fixture:
    data: Path
    db: str
    ca_file: Path
    email: str
    probe_key: dcrypto.DeviceKey
    probe_id: str
    idle: list[tuple[str, dcrypto.DeviceKey]]


def prepare(idle_devices: int) -> Fixture:
    data = Path(tempfile.mkdtemp(prefix="cvbench-"))
    db = database_url()
    settings = Settings(
        data_dir=data,
        database_url=db,
        argon2_time_cost=1,
        argon2_memory_kib=64,
        insecure_test_kdf=True,
    )
    master = keystore_for(settings).create()
    audit_key.create_audit_key(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master)
    cert, key = development_certificate(["localhost"])
    (data / "tls").mkdir()
    (data / "tls" / "cert.pem").write_bytes(cert)
    (data / "tls" / "key.pem").write_bytes(key)
    rt = open_runtime(settings, migrate=True)
    ca.create(data, master, common_name="bench CA", organisation="bench")
    actor = Actor.operator("bench")
    directory.create_organisation(rt, actor, code="BENCH", name="Bench", networks=["127.0.0.0/8"])
    cards = [_card(rt, actor, f"user{i}@bench.example") for i in range(2)]
    inv = pairing.create_pairing(rt, actor, serial=cards[0][0], org_code="BENCH")
    probe = dcrypto.DeviceKey.generate()
    token = parse_qs(urlsplit(inv.uri).query)["token"][0]
    public = dcrypto.b64url(probe.public_der())
    proof = probe.sign(dcrypto.pairing_signing_input(token=token, public_key=public))
    req = pairing.PairRequest(
        token=token,
        passcode=PASSCODE,
        public_key=public,
        proof=dcrypto.b64url(proof),
        name="probe",
        platform="bench",
    )
    paired = pairing.pair(rt, Actor(ref="b", display="b", client_address="127.0.0.1"), req)
    idle = _idle_devices(rt, cards[1][1], idle_devices)
    rt.close()
    return Fixture(
        data, db, data / "tls" / "cert.pem", "user0@bench.example", probe, paired.device_id, idle
    )


def _card(rt: Any, actor: Actor, email: str) -> tuple[str, str]:
    uid = f"5559{secrets.randbelow(10**8):08d}"
    directory.create_person(
        rt,
        actor,
        directory.NewPerson(
            user_id=uid, forename="Bench", surname="User", email=email, organisations=("BENCH",)
        ),
    )
    card = issuance.issue_card(
        rt,
        actor,
        issuance.IssueRequest(
            organisation="BENCH",
            user_id=uid,
            issuance_passcode="issue-me-123",
            key_algorithm="ecp256",
        ),
    )
    answers = tuple(
        enrolment.SecurityAnswer(question=f"Q{i}?", answer=f"answer {i}") for i in range(3)
    )
    enrolment.enrol(
        rt,
        actor,
        enrolment.EnrolRequest(
            serial=card.serial, issuance_passcode="issue-me-123", passcode=PASSCODE, answers=answers
        ),
    )
    return card.serial, card.card_id


def _idle_devices(rt: Any, card_id: str, n: int) -> list[tuple[str, dcrypto.DeviceKey]]:
    out = []
    with rt.db.begin() as s:
        org_id = s.execute(text("SELECT id FROM organisations WHERE code='BENCH'")).scalar_one()
        for i in range(n):
            key = dcrypto.DeviceKey.generate()
            device_id = new_id()
            s.add(
                Device(
                    id=device_id,
                    card_id=card_id,
                    organisation_id=org_id,
                    name=f"idle{i}",
                    platform="bench",
                    application="authenticator",
                    public_key_der=key.public_der(),
                    sealed_totp_secret=seal_totp(rt.master_key, device_id, "A" * 32),
                    status="active",
                    created_at=utcnow(),
                )
            )
            out.append((device_id, key))
    return out


@contextmanager
def instance(fx: Fixture, redis: bool) -> Iterator[str]:
    """``cardvault serve`` as its own process; yields its URL."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARDVAULT_")}
    env.update(
        CHEAP,
        CARDVAULT_DATABASE_URL=fx.db,
        CARDVAULT_HOST="127.0.0.1",
        CARDVAULT_PORT=str(port),
        CARDVAULT_PUBLIC_URL=f"https://127.0.0.1:{port}",
    )
    if redis:
        env.update(CARDVAULT_REDIS_URL=REDIS, CARDVAULT_REDIS_PREFIX="cvbench")
    script = str(Path(sys.executable).parent / "cardvault")
    proc = subprocess.Popen(
        [script, "--data-dir", str(fx.data), "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(
                    f"{url}/healthz",
                    verify=ssl.create_default_context(cafile=str(fx.ca_file)),
                    timeout=1,
                )
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- clients ----------------------------------------------------------------------------------


def signed_headers(
    device_id: str, key: dcrypto.DeviceKey, method: str, path: str, body: bytes
) -> dict[str, str]:
    ts, nonce = int(time.time()), secrets.token_urlsafe(16)
    msg = dcrypto.request_signing_input(
        method=method, path=path, timestamp=ts, nonce=nonce, body=body
    )
    return {
        "X-Cardvault-Device": device_id,
        "X-Cardvault-Timestamp": str(ts),
        "X-Cardvault-Nonce": nonce,
        "X-Cardvault-Signature": dcrypto.b64url(key.sign(msg)),
    }


async def hold_stream(
    client: httpx.AsyncClient,
    device_id: str,
    key: dcrypto.DeviceKey,
    ready: asyncio.Event | None = None,
    inbox: asyncio.Queue[dict[str, Any]] | None = None,
) -> None:
    path = "/api/v1/device/events"
    async with client.stream(
        "GET",
        path,
        headers=signed_headers(device_id, key, "GET", path, b""),
        timeout=httpx.Timeout(30, read=None),
    ) as response:
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
                if event == "hello" and ready is not None:
                    ready.set()
            elif line.startswith("data:") and event == "challenge" and inbox is not None:
                await inbox.put(json.loads(line[5:])["challenge"])


@asynccontextmanager
async def idle_streams(
    url: str, fx: Fixture, devices: list[tuple[str, dcrypto.DeviceKey]]
) -> AsyncIterator[None]:
    limits = httpx.Limits(max_connections=len(devices) + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=url,
        verify=ssl.create_default_context(cafile=str(fx.ca_file)),
        limits=limits,
        timeout=60,
    ) as client:
        tasks, ready = [], []
        for i in range(0, len(devices), 100):  # connect in batches, as phones would trickle in
            batch = [(d, k, asyncio.Event()) for d, k in devices[i : i + 100]]
            tasks += [asyncio.create_task(hold_stream(client, d, k, e)) for d, k, e in batch]
            ready += [e for _, _, e in batch]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready[-len(batch) :])), 120)
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class Pc:
    def __init__(self, client: httpx.AsyncClient, jwk: dict[str, Any]) -> None:
        self.client, self.jwk = client, jwk

    async def sealed(self, path: str, claims: dict[str, Any]) -> dict[str, Any]:
        req = envelope.seal_request(self.jwk, claims, now=time.time())
        r = await self.client.post(
            path, content=req.token, headers={"Content-Type": "application/jose"}
        )
        r.raise_for_status()
        return envelope.open_response(req.response_key, r.text)


async def sample(
    pc: Pc, device_client: httpx.AsyncClient, fx: Fixture, inbox: asyncio.Queue[dict[str, Any]]
) -> tuple[float, float]:
    login = await pc.sealed(
        "/api/v1/auth/login",
        {
            "identifier": {"kind": "email", "value": fx.email},
            "passcode": PASSCODE,
            "client_name": "bench",
        },
    )
    txn = login["transaction_id"]
    t_push = time.perf_counter()
    started = (await pc.client.post("/api/v1/auth/push", json={"transaction_id": txn})).json()
    challenge = await asyncio.wait_for(inbox.get(), 30)
    delivered = time.perf_counter() - t_push
    waiter = asyncio.create_task(
        pc.client.get(
            f"/api/v1/auth/push/{started['challenge_id']}",
            params={"transaction_id": txn, "wait": "25"},
        )
    )
    await asyncio.sleep(0.05)  # the PC's long-poll is now waiting on its instance
    number = started["number"]
    msg = dcrypto.answer_signing_input(
        challenge_id=challenge["id"], number=number, decision="approve"
    )
    body = {
        "number": number,
        "decision": "approve",
        "signature": dcrypto.b64url(fx.probe_key.sign(msg)),
    }
    raw = json.dumps(body).encode()
    path = f"/api/v1/device/challenges/{challenge['id']}/answer"
    headers = {
        **signed_headers(fx.probe_id, fx.probe_key, "POST", path, raw),
        "Content-Type": "application/json",
    }
    t0 = time.perf_counter()
    answered = await device_client.post(path, content=raw, headers=headers)
    answered.raise_for_status()
    assert (await waiter).json()["status"] == "approved"
    await pc.sealed(
        "/api/v1/auth/factor",
        {
            "transaction_id": txn,
            "response": {"method": "authenticator", "challenge_id": started["challenge_id"]},
        },
    )
    return time.perf_counter() - t0, delivered


async def measure(
    pc_url: str, device_url: str, fx: Fixture, idle: int, samples: int
) -> dict[str, float]:
    verify = ssl.create_default_context(cafile=str(fx.ca_file))
    async with (
        httpx.AsyncClient(base_url=pc_url, verify=verify, timeout=60) as pcc,
        httpx.AsyncClient(base_url=device_url, verify=verify, timeout=60) as devc,
        idle_streams(device_url, fx, fx.idle[:idle]),
    ):
        jwk = (await pcc.get("/.well-known/jwks.json")).json()["keys"][0]
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        ready = asyncio.Event()
        probe = asyncio.create_task(hold_stream(devc, fx.probe_id, fx.probe_key, ready, inbox))
        await asyncio.wait_for(ready.wait(), 30)
        pc = Pc(pcc, jwk)
        for _ in range(3):  # warm-up
            await sample(pc, devc, fx, inbox)
        results = [await sample(pc, devc, fx, inbox) for _ in range(samples)]
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
    lat = sorted(r[0] * 1000 for r in results)
    deliv = sorted(r[1] * 1000 for r in results)
    return {
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "delivery_p50": statistics.median(deliv),
    }


def show(label: str, r: dict[str, float]) -> None:
    print(
        f"{label:<44} approval→session p50 {r['p50']:7.1f} ms  p99 {r['p99']:7.1f} ms"
        f"   (challenge→phone p50 {r['delivery_p50']:6.1f} ms)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--ramp", default="0,1000,2000,4000,8000")
    ap.add_argument("--ramp-only", action="store_true", help="skip the fixed scenarios")
    args = ap.parse_args()
    ramp = [int(x) for x in args.ramp.split(",") if x]
    most = max([args.devices, *ramp])
    print(f"Preparing {most} idle devices and a probe (PostgreSQL, cheap Argon2)…", flush=True)
    fx = prepare(most)
    try:
        if not args.ramp_only:
            fixed(fx, args.devices, args.samples)
        ramp_up(fx, ramp, args.samples)
    finally:
        shutil.rmtree(fx.data, ignore_errors=True)


def fixed(fx: Fixture, devices: int, samples: int) -> None:
    """N devices on one instance; then two instances through Redis (phones on B, PC on A)."""
    with instance(fx, redis=False) as one:
        show(
            f"one instance, {devices} devices connected",
            asyncio.run(measure(one, one, fx, devices, samples)),
        )
    with instance(fx, redis=True) as a, instance(fx, redis=True) as b:
        show(
            f"two instances via Redis, {devices} devices on B",
            asyncio.run(measure(a, b, fx, devices, samples)),
        )


def ramp_up(fx: Fixture, ramp: list[int], samples: int) -> None:
    """More and more idle devices on one instance, until the median doubles."""
    base = None
    with instance(fx, redis=False) as one:
        for n in ramp:
            r = asyncio.run(measure(one, one, fx, n, samples))
            show(f"ramp: one instance, {n} devices connected", r)
            base = base or r["p50"]
            if r["p50"] >= 2 * base:
                print(f"Median latency doubled at {n} connected devices per instance.")
                return
    print(f"Median latency had not doubled at {ramp[-1]} devices per instance.")


if __name__ == "__main__":
    main()
