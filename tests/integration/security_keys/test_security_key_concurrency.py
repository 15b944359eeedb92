"""Concurrency is correctness for security keys: one answer, one proof, one session, on
SQLite and PostgreSQL, however many copies arrive at the same moment."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from tests.support import auth as a
from tests.support import factories as f
from tests.support import keys as k
from tests.support.soft_ctap2 import SoftCtap2Device

from cardvault.errors import CardvaultError
from cardvault.services.security_keys import signin as security_key_signin
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import AuditEvent, CardSession

pytestmark = pytest.mark.slow


def race(n: int, fn: Callable[[], object]) -> Counter[str]:
    barrier = threading.Barrier(n)

    def one() -> str:
        barrier.wait()
        try:
            result = fn()
        except CardvaultError as exc:
            return exc.code
        error = getattr(result, "factor_error", None)
        return str(error.code) if error else "ok"

    with ThreadPoolExecutor(max_workers=n) as pool:
        return Counter(pool.map(lambda _: one(), range(n)))


def test_the_same_answer_sent_ten_times_at_once_is_accepted_once(
    rt: Runtime, operator: Actor
) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)
    start = security_key_signin.begin(rt, org_code="ORG1")
    answer = k.key_answer(rt, device, start.options)

    outcomes = race(
        10,
        lambda: security_key_signin.complete(
            rt, a.client(), ceremony_id=start.ceremony_id, response=answer
        ),
    )

    # at most five answers per card are checked at once (the second-factor counter); the
    # others are refused before anything is checked
    assert outcomes["ok"] == 1
    assert set(outcomes) <= {"ok", "webauthn_state_replayed", "second_factor_locked"}
    with rt.db() as s:
        refused = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "fido2.sign_in", AuditEvent.outcome == "failure")
        )
    assert refused == outcomes["webauthn_state_replayed"]


def test_one_proof_spent_from_five_sign_ins_at_once_opens_one_session(
    rt: Runtime, operator: Actor
) -> None:
    k.org(rt, operator, **k.NO_UV)
    card = f.active_card(rt, operator)
    device = SoftCtap2Device()
    k.register(rt, operator, card, device, resident=True)
    proof = k.key_first(rt, device, org_code="ORG1")
    engine = Engine(rt)

    outcomes = race(5, lambda: k.login_with_proof(engine, proof.proof))

    assert outcomes["ok"] == 1
    assert sum(outcomes.values()) == 5
    assert set(outcomes) <= {"ok", "fido2_proof_invalid", "sign_in_failed"}
    with rt.db() as s:
        assert s.scalar(select(func.count()).select_from(CardSession)) == 1
