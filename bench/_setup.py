"""Shared set-up for the benchmarks: a throw-away data directory and holders with TOTP."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cardvault.config import Settings
from cardvault.services.cards import enrolment, issuance, methods
from cardvault.services.directory import registry as directory
from cardvault.services.system import bootstrap
from cardvault.services.system.runtime import Actor, Runtime, open_runtime

PASSCODE = "violet harbour lantern quartz 7"
ISSUANCE = "bench-issue-123"


@dataclass(frozen=True, kw_only=True)
class BenchHolder:
    email: str
    serial: str
    totp_secrets: tuple[str, ...]


def data_dir(database_url: str | None) -> tuple[Settings, Runtime]:
    root = Path(tempfile.mkdtemp(prefix="cardvault-bench-"))
    settings = Settings(data_dir=root, database_url=database_url)
    bootstrap.initialise(
        settings,
        actor=Actor.operator("bench"),
        demo=False,
        if_missing=False,
        echo=lambda m: print(f"  {m}", flush=True),
    )
    rt = open_runtime(settings)
    directory.create_organisation(
        rt,
        Actor.operator("bench"),
        code="BENCH",
        name="Bench Trust",
        networks=["127.0.0.0/8", "::1/128"],
    )
    return settings, rt


def holders(
    rt: Runtime, count: int, authenticators: int = 1, *, first: int = 0
) -> list[BenchHolder]:
    """Holders with RSA-2048 cards, enrolled at ``rt``'s KDF, each with TOTP apps; numbered
    from ``first`` (so that a second group can join the same organisation)."""
    print(f"  creating {count} card holders (keys, certificates, KDF slots) …", flush=True)
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda i: _holder(rt, i, authenticators), range(first, first + count)))


def _holder(rt: Runtime, i: int, authenticators: int) -> BenchHolder:
    actor = Actor.operator("bench")
    uid = f"{777000000000 + i:012d}"
    email = f"holder{i}@bench.example"
    directory.create_person(
        rt,
        actor,
        directory.NewPerson(
            user_id=uid, forename="Pat", surname=f"Tester{i}", email=email, organisations=("BENCH",)
        ),
    )
    card = issuance.issue_card(
        rt,
        actor,
        issuance.IssueRequest(organisation="BENCH", user_id=uid, issuance_passcode=ISSUANCE),
    )
    answers = tuple(
        enrolment.SecurityAnswer(question=f"Question {n}?", answer=f"answer {n} {i}")
        for n in (1, 2, 3)
    )
    enrolment.enrol(
        rt,
        actor,
        enrolment.EnrolRequest(
            serial=card.serial, issuance_passcode=ISSUANCE, passcode=PASSCODE, answers=answers
        ),
    )
    secrets = tuple(
        methods.add_totp(rt, actor, serial=card.serial, org_code="BENCH", label=f"app {n}").secret
        for n in range(authenticators)
    )
    return BenchHolder(email=email, serial=card.serial, totp_secrets=secrets)
