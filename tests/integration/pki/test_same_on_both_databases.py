"""A CRL and an OCSP answer made while the database is PostgreSQL say the same as those made
on SQLite (issue 17): same scenario, same clock, same CA; only the random certificate serials
differ, so the comparison is of everything else."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from sqlalchemy import select
from tests.support import factories as f
from tests.support.databases import (
    NO_RATE_LIMITS,
    REQUIRE_PG,
    TEST_ARGON2,
    fresh_postgres_database,
    postgres_reachable,
)

from cardvault.config import Settings
from cardvault.services.cards import issuance
from cardvault.services.pki import ca, crl
from cardvault.services.pki import ocsp as responder
from cardvault.services.system.runtime import Actor, Runtime, open_runtime
from cardvault.store.models import Certificate

AT = datetime(2027, 3, 1, 9, 30, 15, tzinfo=UTC)


@contextmanager
def runtime_on(url: str, key_template: Path, folder: Path) -> Iterator[Runtime]:
    shutil.copytree(key_template, folder)
    settings = Settings(
        data_dir=folder,
        database_url=url,
        **TEST_ARGON2,
        **NO_RATE_LIMITS,  # type: ignore[arg-type]
    )
    rt = open_runtime(settings, migrate=True)
    rt.clock = lambda: AT
    try:
        yield rt
    finally:
        rt.close()


def what_relying_parties_see(rt: Runtime, operator: Actor) -> dict[str, object]:
    f.org(rt, operator)
    kept = f.active_card(rt, operator)
    f.org(rt, operator, "ORG2")
    gone = f.active_card(rt, operator, "ORG2")
    issuance.revoke_card(rt, operator, gone.serial, reason="lost", reason_code="keyCompromise")
    doc = crl.publish(rt)
    assert doc is not None
    parsed = x509.load_der_x509_crl(doc.der)
    issuer = ca.load(rt).cert
    answers = {}
    with rt.db() as session:
        rows = session.scalars(
            select(Certificate).where(Certificate.card_id.in_([kept.card_id, gone.card_id]))
        ).all()
    for row in rows:
        cert = x509.load_pem_x509_certificate(row.pem.encode())
        request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256()).build()
        answer = ocsp.load_der_ocsp_response(
            responder.respond(rt, request.public_bytes(serialization.Encoding.DER))
        )
        key = ("kept" if row.card_id == kept.card_id else "gone", row.usage)
        answers[key] = (
            answer.response_status,
            answer.certificate_status,
            answer.revocation_time_utc,
            answer.revocation_reason,
            answer.this_update_utc,
            answer.next_update_utc,
        )
    return {
        "crl_issuer": parsed.issuer,
        "crl_number": parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number,
        "this_update": parsed.last_update_utc,
        "next_update": parsed.next_update_utc,
        "entries": sorted(
            (
                e.revocation_date_utc,
                e.extensions.get_extension_for_class(x509.CRLReason).value.reason,
            )
            for e in parsed
        ),
        "ocsp": answers,
    }


@pytest.mark.postgres
def test_crl_and_ocsp_are_the_same_on_postgresql_and_sqlite(
    key_template: Path, tmp_path: Path, operator: Actor
) -> None:
    if not postgres_reachable():
        if REQUIRE_PG:
            pytest.fail("PostgreSQL is required")
        pytest.skip("PostgreSQL is not reachable")
    seen = []
    with runtime_on(f"sqlite:///{tmp_path / 'one.db'}", key_template, tmp_path / "lite") as rt:
        seen.append(what_relying_parties_see(rt, operator))
    with fresh_postgres_database() as url, runtime_on(url, key_template, tmp_path / "pg") as rt:
        seen.append(what_relying_parties_see(rt, operator))
    lite, pg = seen
    assert lite == pg
    assert len(lite["entries"]) == 2  # type: ignore[arg-type]
    statuses = {k: v[1] for k, v in lite["ocsp"].items()}  # type: ignore[attr-defined]
    assert statuses[("kept", "authentication")] is ocsp.OCSPCertStatus.GOOD
    assert statuses[("gone", "authentication")] is ocsp.OCSPCertStatus.REVOKED
