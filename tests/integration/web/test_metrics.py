"""/metrics over real HTTP after real sign-ins, signatures, refusals and a broken anchor,
parsed with Prometheus's own parser."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.support import auth as a
from tests.support import factories as f

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.services.audit.errors import AnchorWriteFailed
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def http(live_url: str, rt: Runtime, operator: Actor) -> Iterator[httpx.Client]:
    a.local_network(rt, operator)
    with httpx.Client(base_url=live_url, timeout=30) as client:
        yield client


@pytest.fixture
def holder(rt: Runtime, operator: Actor) -> a.HolderFixture:
    a.open_org(rt, operator)
    return a.holder(rt, operator)


def scrape(http: httpx.Client) -> Samples:
    answer = http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _login(http: httpx.Client, h: a.HolderFixture, passcode: str = f.STRONG_PASSCODE) -> object:
    data = core.LoginInput(identifier_kind="email", identifier=h.email, passcode=passcode)
    return core.login(CardvaultApi(http), "test", data, totp=h.code(), ask_code=lambda _: "")


def test_sign_ins_signatures_and_the_kdf_queue_are_counted(
    http: httpx.Client, holder: a.HolderFixture
) -> None:
    before = scrape(http)
    assert value(before, "cardvault_signins_total", route="email", outcome="success") == 0
    state = _login(http, holder)
    with pytest.raises(ServiceError):
        _login(http, holder, passcode="not the passcode 1")
    digest = hashlib.sha256(b"a clinical record").digest()
    core.sign(CardvaultApi(http), state, digest=digest, key="authentication")  # type: ignore[arg-type]

    after = scrape(http)
    assert value(after, "cardvault_signins_total", route="email", outcome="success") == 1
    assert value(after, "cardvault_signins_total", route="email", outcome="passcode_refused") == 1
    assert value(after, "cardvault_signatures_total", key="authentication", outcome="success") == 1
    assert value(after, "cardvault_kdf_wait_seconds_count") == 2  # two passcodes derived
    assert value(after, "cardvault_kdf_queue_depth") == 0
    assert value(after, "cardvault_kdf_running") == 0
    assert value(after, "cardvault_kdf_refused_total") == 0
    login = value(after, "cardvault_http_requests_total", area="api/v1/auth", status="200")
    assert login >= 1
    assert value(after, "cardvault_http_requests_total", area="api/v1/auth", status="401") == 1
    assert value(after, "cardvault_audit_anchor_lag_seconds") < 5
    assert value(after, "cardvault_audit_anchor_pending_lines") == 0


def test_rate_limited_answers_are_counted(http: httpx.Client, rt: Runtime) -> None:
    rt.settings = rt.settings.model_copy(
        update={"rate_limits_enabled": True, "rate_limit_status": "2/1m"}
    )
    answers = [http.get("/api/v1/certificates/status").status_code for _ in range(3)]
    assert answers[-1] == 429
    samples = scrape(http)
    assert value(samples, "cardvault_rate_limited_total", bucket="status", scope="address") == 1
    assert (
        value(samples, "cardvault_http_requests_total", area="api/v1/certificates", status="429")
        == 1
    )


def test_an_anchor_that_cannot_be_written_shows_as_lag(
    http: httpx.Client, rt: Runtime, operator: Actor, tmp_path: Path
) -> None:
    path = tmp_path / "anchor" / "anchors.jsonl"
    path.parent.mkdir()
    path.symlink_to("/dev/full")  # a full disk, for real
    rt.settings = rt.settings.model_copy(update={"audit_anchor_file": path})
    rt._memo.pop("audit-anchor", None)
    with pytest.raises(AnchorWriteFailed):
        directory.create_organisation(rt, operator, code="LAG", name="Lagging trust")
    samples = scrape(http)
    assert value(samples, "cardvault_audit_anchor_pending_lines") == 1
    assert value(samples, "cardvault_audit_anchor_lag_seconds") > 0
    assert http.get("/readyz").status_code == 503


def test_metrics_answer_only_the_monitoring_networks(http: httpx.Client, rt: Runtime) -> None:
    assert http.get("/metrics").status_code == 200  # loopback, the default
    rt.settings = rt.settings.model_copy(update={"metrics_networks": ["192.0.2.0/24"]})
    assert http.get("/metrics").status_code == 404
    rt.settings = rt.settings.model_copy(update={"metrics_networks": []})
    assert http.get("/metrics").status_code == 404
