"""Prometheus metrics of one instance (DESIGN §4; the names are in docs/operator/monitoring.md).

Each runtime has its own registry, made on first use, so that nothing is registered at
import and a test's numbers are its own. ``cardvault serve`` runs one process per instance
(no worker processes), so the registry of that process is the instance's whole story and
Prometheus scrapes each instance on its own (no multiprocess mode is needed).

What the audit trail records is counted from the audit trail, *after* its transaction
commits (``count_after_commit``): a sign-in or signature that was rolled back is not
counted, and each one that happened is counted once, whichever door it came through (an
event written inside a savepoint that is rolled back while its transaction commits would
still be counted; none of the counted events is written in a savepoint). What
is not an audited event (the KDF queue, rate limits, HTTP answers, the anchor's lag) is
measured where it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import SignInRoute
from cardvault.json_types import JsonInput
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import on_every_session

PREFIX = "cardvault"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300)
_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_PENDING = "cardvault_metrics_pending"


class _Gauges(Collector):
    """Gauges read when scraped: sources register a function returning their value."""

    def __init__(self) -> None:
        self._sources: dict[str, tuple[str, Callable[[], float]]] = {}

    def add(self, name: str, documentation: str, read: Callable[[], float]) -> None:
        self._sources[name] = (documentation, read)

    def collect(self) -> Any:
        for name, (documentation, read) in list(self._sources.items()):
            yield GaugeMetricFamily(f"{PREFIX}_{name}", documentation, value=read())


def _counter(registry: CollectorRegistry, name: str, doc: str, *labels: str) -> Counter:
    """A counter named under the service's prefix, in the instance's own registry."""
    return Counter(f"{PREFIX}_{name}", doc, labels, registry=registry)


def _histogram(
    registry: CollectorRegistry,
    name: str,
    doc: str,
    *labels: str,
    buckets: tuple[float, ...] = Histogram.DEFAULT_BUCKETS,
) -> Histogram:
    """A histogram named under the service's prefix, in the instance's own registry."""
    return Histogram(f"{PREFIX}_{name}", doc, labels, registry=registry, buckets=buckets)


class Metrics:
    """The instance's metrics; services reach them through ``metrics(rt)``."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.signins = _counter(
            r,
            "signins",
            "Sign-in steps that ended, by sign-in route and outcome",
            "route",
            "outcome",
        )
        self.signatures = _counter(
            r,
            "signatures",
            "Signatures made (or refused) with a card's keys, by key and outcome",
            "key",
            "outcome",
        )
        self.push_answers = _counter(
            r, "push_answers", "Push sign-in requests that ended, by outcome", "outcome"
        )
        self.push_latency = _histogram(
            r,
            "push_answer_seconds",
            "From a push sign-in request sent to the phone to its answer",
            buckets=_LATENCY_BUCKETS,
        )
        self.push_delivery = _histogram(
            r,
            "push_delivery_seconds",
            "From a push sign-in request to its sending down the phone's event stream",
            buckets=_WAIT_BUCKETS,
        )
        self.notifications_failed = _counter(
            r,
            "notifications_failed",
            "Emails and SMS given up on after their last attempt, by channel",
            "channel",
        )
        self.kdf_wait = _histogram(
            r,
            "kdf_wait_seconds",
            "How long a key derivation waited for a CPU slot",
            buckets=_WAIT_BUCKETS,
        )
        self.kdf_refused = _counter(
            r, "kdf_refused", "Key derivations refused because the queue was full (answered 429)"
        )
        self.rate_limited = _counter(
            r,
            "rate_limited",
            "Requests refused by a rate limit (answered 429), by bucket and scope",
            "bucket",
            "scope",
        )
        self.http_requests = _counter(
            r, "http_requests", "HTTP requests answered, by area and status code", "area", "status"
        )
        self.http_seconds = _histogram(
            r, "http_request_seconds", "Time to answer an HTTP request, by area", "area"
        )
        self.gauges = _Gauges()
        r.register(self.gauges)
        self.kdf_bound = False

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


def metrics(rt: Runtime) -> Metrics:
    """This runtime's metrics (one per process in ``cardvault serve``)."""
    made = rt.memo("metrics", Metrics)
    if not made.kdf_bound:
        _bind_kdf(made, rt)
    return made


def _bind_kdf(m: Metrics, rt: Runtime) -> None:
    gate = rt.kdf_gate
    m.gauges.add("kdf_queue_depth", "Key derivations waiting for a CPU slot", gate.waiting)
    m.gauges.add("kdf_running", "Key derivations running now", gate.running_now)
    gate.observe(waited=m.kdf_wait.observe, refused=m.kdf_refused.inc)
    m.kdf_bound = True


# -- counting what the audit trail records, after its commit --------------------------------


def count_after_commit(session: Session, rt: Runtime, record: Callable[[Metrics], None]) -> None:
    """Run ``record`` once the session's transaction commits (never if it rolls back)."""
    _install_hooks()
    pending: list[tuple[Runtime, Callable[[Metrics], None]]] = session.info.setdefault(_PENDING, [])
    pending.append((rt, record))


def audited(
    session: Session,
    rt: Runtime,
    action: AuditAction,
    outcome: str,
    details: Mapping[str, JsonInput] | None,
) -> None:
    """Count an audit event about to be committed, if it is one the metrics follow."""
    record = _from_audit(action, outcome, details or {})
    if record is not None:
        count_after_commit(session, rt, record)


def _from_audit(
    action: AuditAction, outcome: str, details: Mapping[str, JsonInput]
) -> Callable[[Metrics], None] | None:
    if action in _SIGNIN_EVENTS:
        route, step = _SIGNIN_EVENTS[action]
        label = _signin_outcome(step, outcome)
        if label is None:
            return None
        route = route or _route(details)
        return lambda m: m.signins.labels(route=route, outcome=label).inc()
    if action is AuditAction.CARD_SIGNED:
        key = str(details.get("key") or f"piv-{details.get('slot', 'unknown')}")
        return lambda m: m.signatures.labels(key=key, outcome=outcome).inc()
    if action is AuditAction.PUSH_ANSWERED:
        return lambda m: m.push_answers.labels(outcome=outcome).inc()
    if action is AuditAction.NOTIFICATION_FAILED:
        channel = str(details.get("channel") or "unknown")
        return lambda m: m.notifications_failed.labels(channel=channel).inc()
    return None


#: audit action → (fixed sign-in route or None: from the details, the step it ends)
_SIGNIN_EVENTS: dict[AuditAction, tuple[str | None, str]] = {
    AuditAction.SESSION_OPENED: (None, "session"),
    AuditAction.AUTH_PASSCODE: (None, "passcode"),
    AuditAction.AUTH_SECOND_FACTOR: (None, "second_factor"),
    AuditAction.SECURITY_KEY_SIGN_IN: (SignInRoute.SECURITY_KEY.value, "security_key"),
    AuditAction.AUTH_QR_LOGIN: (SignInRoute.QR.value, "qr"),
}


def _signin_outcome(step: str, outcome: str) -> str | None:
    """``success`` once a session opens; each refusal by the step that refused it."""
    if step == "session":
        return "success"
    if outcome == "success":
        return None  # a step passed: the sign-in goes on (its session is what counts)
    return f"{step}_refused"


def _route(details: Mapping[str, JsonInput]) -> str:
    method = str(details.get("method") or "unknown")
    return method.split("+", 1)[0][:40]


def _install_hooks() -> None:
    on_every_session(("after_commit", _after_commit), ("after_soft_rollback", _after_rollback))


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, None)
    for rt, record in pending or ():
        record(metrics(rt))


def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint
        session.info.pop(_PENDING, None)
