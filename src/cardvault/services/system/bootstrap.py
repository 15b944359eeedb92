"""``cardvault init``: a data directory with everything the service needs on first start.

Master key, database schema, audit and transport keys, a development TLS certificate and
an issuing CA; optionally a demo organisation with an RA user and a card holder, whose
credentials are printed once and kept in a 0600 file for the newcomer.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from cardvault.config import Settings
from cardvault.crypto.tls import development_certificate
from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import Conflict
from cardvault.json_types import JsonObject
from cardvault.keystore.files import write_private
from cardvault.services.audit import signing_key as audit_key
from cardvault.services.audit import trail as audit
from cardvault.services.cards import enrolment, issuance, methods
from cardvault.services.directory import registry as directory
from cardvault.services.pki import ca
from cardvault.services.system.runtime import Actor, Runtime, keystore_for, open_runtime
from cardvault.services.transport import keys as transport_keys

Echo = Callable[[str], None]

DEMO_ORG = "DEMO"
DEMO_QUESTIONS = (
    "What was the name of your first pet?",
    "In which town were you born?",
    "What was your childhood nickname?",
)


DEMO_CREDENTIALS = "demo-credentials.json"


@dataclass(frozen=True, kw_only=True)
class DemoAccount:
    """A demo person with their card, and what they need to use it."""

    user_id: str
    name: str
    email: str
    card_serial: str
    status: str
    #: an enrolled card's passcode, authenticator and security answers
    passcode: str | None = None
    totp_secret: str | None = None
    totp_uri: str | None = None
    security_answers: tuple[tuple[str, str], ...] = ()
    #: an issued card's one-time issuance passcode, for its holder to enrol with
    issuance_passcode: str | None = None
    ad_account: str | None = None

    def as_json(self) -> JsonObject:
        """The demo account as JSON, for ``cardvault init --demo``."""
        out: JsonObject = {
            "user_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "card_serial": self.card_serial,
            "status": self.status,
        }
        if self.issuance_passcode is not None:
            out["issuance_passcode"] = self.issuance_passcode
        if self.passcode is not None:
            out |= {
                "passcode": self.passcode,
                "totp_secret": self.totp_secret,
                "totp_uri": self.totp_uri,
                "security_answers": dict(self.security_answers),
            }
        if self.ad_account is not None:
            out["ad_account"] = self.ad_account
        return out


@dataclass(frozen=True, kw_only=True)
class DemoCredentials:
    """What ``init --demo`` made: printed once and kept in a 0600 file."""

    organisation: str
    ra_user: DemoAccount
    card_holder: DemoAccount
    to_enrol: DemoAccount

    def as_json(self) -> JsonObject:
        """The demo organisation and accounts as JSON."""
        return {
            "organisation": self.organisation,
            "ra_user": self.ra_user.as_json(),
            "card_holder": self.card_holder.as_json(),
            "to_enrol": self.to_enrol.as_json(),
        }


@dataclass(kw_only=True)
class InitResult:
    """What ``cardvault init`` did: the data directory, and the demo set-up if asked."""

    data_dir: str
    created: bool
    demo: DemoCredentials | None = None
    #: where the demo credentials are kept, whether made now or on an earlier start
    demo_credentials: str | None = None


def tls_paths(settings: Settings) -> tuple[Path, Path]:
    """The TLS certificate and key: the configured ones, or the generated pair."""
    if settings.tls_cert_file and settings.tls_key_file:
        return settings.tls_cert_file, settings.tls_key_file
    return settings.data_dir / "tls" / "cert.pem", settings.data_dir / "tls" / "key.pem"


def initialise(
    settings: Settings, *, actor: Actor, demo: bool, if_missing: bool, echo: Echo
) -> InitResult:
    """First start: data directory, master key, schema, CA, audit key (and a demo).
    Raises Conflict when already initialised (unless ``if_missing``)."""
    store = keystore_for(settings)
    if store.exists():
        if if_missing:
            return InitResult(
                data_dir=str(settings.data_dir),
                created=False,
                demo_credentials=_demo_credentials(settings),
            )
        raise Conflict(
            f"{settings.data_dir} is already initialised.",
            remedy="Use another --data-dir, or --if-missing to reuse it.",
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    echo(f"Creating the master key in {settings.keys_dir}")
    master = store.create()
    audit_key.create_audit_key(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master)
    transport_keys.create(settings.keys_dir, master, ecdh=True)
    development_tls(settings, echo)
    echo("Creating the database schema")
    rt = open_runtime(settings, migrate=True)
    try:
        echo("Creating the development issuing CA (RSA-3072)")
        ca.create(
            settings.data_dir,
            master,
            common_name="cardvault Development Issuing CA",
            organisation="cardvault development",
        )
        with rt.db.begin() as session:
            audit.record(session, rt, actor, action=AuditAction.SERVICE_INITIALISED)
        result = InitResult(data_dir=str(settings.data_dir), created=True)
        if demo:
            echo("Creating the demo organisation, RA user and card holder")
            result.demo = create_demo(rt, actor)
            write_private(
                settings.data_dir / DEMO_CREDENTIALS,
                json.dumps(result.demo.as_json(), indent=2).encode(),
            )
            result.demo_credentials = _demo_credentials(settings)
    finally:
        rt.close()
    return result


def _demo_credentials(settings: Settings) -> str | None:
    path = settings.data_dir / DEMO_CREDENTIALS
    return str(path) if path.is_file() else None


def development_tls(settings: Settings, echo: Echo) -> None:
    """A self-signed certificate for CARDVAULT_HOST, unless one is configured or exists."""
    cert_path, key_path = tls_paths(settings)
    if cert_path.exists():
        return
    echo(f"Creating a development TLS certificate for {settings.host}")
    cert, key = development_certificate([settings.host, "localhost"])
    cert_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(key_path, key)
    write_private(cert_path, cert)
    cert_path.chmod(0o644)


def demo_passcode() -> str:
    """Strong, random and easy enough to type: four groups of four letters and digits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def create_demo(rt: Runtime, actor: Actor) -> DemoCredentials:
    """The demo organisation, an RA manager, an enrolled holder and a card waiting for its
    holder, with everything each needs to sign in."""
    directory.create_organisation(
        rt,
        actor,
        code=DEMO_ORG,
        name="Demo Hospital NHS Trust",
        networks=["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    )
    ra = _demo_person(rt, actor, "555000000001", "Rana", "Admin", "ra@demo.example")
    directory.grant_role(rt, actor, user_id=ra.user_id, org_code=DEMO_ORG, role="ra_manager")
    ra = _demo_card(rt, actor, ra, enrol=True)
    holder = _demo_person(rt, actor, "555000000002", "Alice", "Example", "alice@demo.example")
    holder = _demo_card(rt, actor, holder, enrol=True)
    methods.add_ad_account(
        rt, actor, serial=holder.card_serial, org_code=DEMO_ORG, account="DEMO\\alice"
    )
    holder = replace(holder, ad_account="DEMO\\alice")
    newcomer = _demo_person(rt, actor, "555000000003", "Bob", "Newcomer", "bob@demo.example")
    newcomer = _demo_card(rt, actor, newcomer, enrol=False)
    return DemoCredentials(organisation=DEMO_ORG, ra_user=ra, card_holder=holder, to_enrol=newcomer)


def _demo_person(
    rt: Runtime, actor: Actor, uid: str, fore: str, sur: str, email: str
) -> DemoAccount:
    directory.create_person(
        rt,
        actor,
        directory.NewPerson(
            user_id=uid, forename=fore, surname=sur, email=email, organisations=(DEMO_ORG,)
        ),
    )
    return DemoAccount(user_id=uid, name=f"{fore} {sur}", email=email, card_serial="", status="")


def _demo_card(rt: Runtime, actor: Actor, person: DemoAccount, *, enrol: bool) -> DemoAccount:
    issuance_passcode = demo_passcode()
    card = issuance.issue_card(
        rt,
        actor,
        issuance.IssueRequest(
            organisation=DEMO_ORG, user_id=person.user_id, issuance_passcode=issuance_passcode
        ),
    )
    if not enrol:
        return replace(
            person,
            card_serial=card.serial,
            status=card.status,
            issuance_passcode=issuance_passcode,
        )
    passcode = demo_passcode()
    answers = tuple(
        enrolment.SecurityAnswer(question=q, answer=a)
        for q, a in zip(DEMO_QUESTIONS, ("rex", "leeds", "sparky"), strict=True)
    )
    enrolment.enrol(
        rt,
        actor,
        enrolment.EnrolRequest(
            serial=card.serial,
            issuance_passcode=issuance_passcode,
            passcode=passcode,
            answers=answers,
        ),
    )
    totp = methods.add_totp(
        rt, actor, serial=card.serial, org_code=DEMO_ORG, label="Demo authenticator"
    )
    return replace(
        person,
        card_serial=card.serial,
        status="active",
        passcode=passcode,
        totp_secret=totp.secret,
        totp_uri=totp.uri,
        security_answers=tuple((q, a.answer) for q, a in zip(DEMO_QUESTIONS, answers, strict=True)),
    )
