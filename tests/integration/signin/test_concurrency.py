"""Concurrency is correctness (DESIGN §3.3): lockout and single-use codes under load,
on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from tests.support import auth as a

from cardvault.errors import CardvaultError
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.signin.kdf_gate import KdfGate
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, Card, CardSession
from cardvault.web.errors import status_of


def _race(n: int, fn: Callable[[], object]) -> Counter[str]:
    """Run ``fn`` from n threads released at the same moment; count outcomes by kind."""
    barrier = threading.Barrier(n)

    def one() -> str:
        barrier.wait()
        try:
            fn()
        except CardvaultError as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(max_workers=n) as pool:
        return Counter(pool.map(lambda _: one(), range(n)))


def _count(rt: Runtime, card_id: str, reason: str) -> int:
    with rt.db() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.card_id == card_id, AuditEvent.reason == reason)
            )
            or 0
        )


@pytest.mark.slow
def test_fifty_concurrent_wrong_passcodes_evaluate_three_kdfs_and_lock(
    rt: Runtime, operator: Actor
) -> None:
    rt.kdf_gate = KdfGate(slots=2, queue=100)
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    engine = Engine(rt)
    outcomes = _race(50, lambda: a.login(engine, h, passcode="definitely wrong passcode"))
    assert outcomes == Counter({"sign_in_failed": 50})
    assert _count(rt, h.card.card_id, "incorrect passcode") == 3
    refused = _count(rt, h.card.card_id, "card is locked") + _count(
        rt, h.card.card_id, "no attempt left (others in progress)"
    )
    assert refused == 47
    with rt.db() as s:
        card = s.get(Card, h.card.card_id)
        assert card is not None
        assert card.status == "locked"
        assert card.failed_attempts == 3
    assert _count(rt, h.card.card_id, "three incorrect passcodes") == 1


@pytest.mark.slow
def test_twenty_concurrent_submissions_of_one_totp_code_succeed_once(
    rt: Runtime, operator: Actor
) -> None:
    rt.kdf_gate = KdfGate(slots=2, queue=100)
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    engine = Engine(rt)
    pending = [a.login(engine, h) for _ in range(20)]
    code = h.code()
    barrier = threading.Barrier(20)

    def submit(txn_id: str) -> str:
        barrier.wait()
        try:
            engine.complete_factor(a.client(), txn_id, FactorAnswer(method="totp", code=code))
        except CardvaultError as exc:
            return exc.code
        return "ok"

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = Counter(pool.map(submit, [p.transaction_id for p in pending]))
    # at most five answers per card are checked at once (the second-factor counter): the
    # rest wait for none and are refused as "locked or too many at once", checking nothing
    assert outcomes["ok"] == 1
    assert set(outcomes) <= {"ok", "totp_replayed", "second_factor_locked"}
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(CardSession)) == 1
    assert _count(rt, h.card.card_id, "TOTP code replayed") == outcomes["totp_replayed"]


def test_kdf_gate_refuses_beyond_its_queue_at_once() -> None:
    gate = KdfGate(slots=1, queue=1)
    with gate.admitted(), gate.admitted():
        with pytest.raises(CardvaultError) as info, gate.admitted():
            pass
        assert info.value.code == "busy"
        assert status_of(info.value) == 429
    with gate.admitted():
        pass  # places are given back
