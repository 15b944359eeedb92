"""Card operations inside a card session (DESIGN §3.2 step 3).

Each operation unwraps the DEK with the client's SK, opens the one private key it needs,
uses it and wipes it. The content-commitment key also needs the passcode in the same
request as the digest it signs (PIV's "PIN always"), so the signature activation is bound
to that digest; that passcode counts towards the lockout like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session

from cardvault.crypto import keys as ckeys
from cardvault.crypto.aead import wipe
from cardvault.crypto.keyslots import (
    WrongSecret,
    open_passcode_slot,
    open_private_key,
    unwrap_session,
)
from cardvault.crypto.x509 import CertUsage
from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import InvalidInput
from cardvault.services.audit import trail as audit
from cardvault.services.cards.sealing import open_record
from cardvault.services.signin import lockout
from cardvault.services.signin import sessions as card_sessions
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Certificate
from cardvault.store.queries import cards as card_queries
from cardvault.store.queries.rows import CardRow, SessionRow

DIGEST_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}


@dataclass(frozen=True, kw_only=True)
class SignRequest:
    """A signature asked for in a card session: the key, the digest and its hash."""

    token: str = field(repr=False)
    session_key: bytes = field(repr=False)
    key: str
    digest: bytes
    hash_alg: str = "sha256"
    scheme: str | None = None
    passcode: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class Signature:
    """A signature, its scheme and the certificate that verifies it."""

    signature: bytes
    scheme: str
    certificate_pem: str


def _usage(text: str) -> CertUsage:
    """A signing key's usage; the key-management key decrypts and never signs."""
    try:
        usage = CertUsage(text.replace("-", "_"))
    except ValueError:
        usage = None
    if usage is None or usage is CertUsage.KEY_MANAGEMENT:
        raise InvalidInput("key is authentication or content-commitment.", field="key")
    return usage


def _check_digest(req: SignRequest) -> None:
    size = DIGEST_SIZES.get(req.hash_alg)
    if size is None:
        raise InvalidInput("hash is sha256, sha384 or sha512.", field="hash")
    if len(req.digest) != size:
        raise InvalidInput(
            f"A {req.hash_alg} digest is {size} bytes, not {len(req.digest)}.", field="digest"
        )


def default_scheme(algorithm: str) -> ckeys.SignatureScheme:
    """The signature scheme a key algorithm signs with when the caller names none."""
    return (
        ckeys.SignatureScheme.ECDSA
        if algorithm.startswith("ec")
        else ckeys.SignatureScheme.RSA_PKCS1V15
    )


def sign(rt: Runtime, actor: Actor, req: SignRequest) -> Signature:
    """Sign a digest with the card's key in a card session. Raises SessionInvalid for an
    ended session, InvalidInput for a malformed digest or scheme, NotFound for a missing key,
    WrongSecret when the session key does not open the card.

    A signature that needs no passcode is one transaction: the session is used, the key
    opened and used and the event audited together (DESIGN §3.7: the audit in the same
    transaction as the operation; issue 16: one write transaction, not two). The work under
    the lock is AES-GCM and one RSA or ECDSA signature. The content-commitment key's
    passcode costs a KDF, which never runs inside a transaction: that signature is audited
    in a transaction of its own after it."""
    usage = _usage(req.key)
    _check_digest(req)
    with transaction(rt.db) as session:
        # plain rows over the transaction's connection: nothing here needs the ORM's objects,
        # and building them cost more than the statements (issue 16)
        conn = session.connection()
        row, card = card_sessions.use_row(conn, rt, req.token, client_address=actor.client_address)
        cert_pem = _certificate_pem(conn, card, usage)
        if usage is not CertUsage.CONTENT_COMMITMENT:
            dek = _session_dek(rt, actor, row, card, req, usage)
            signature, scheme = _signed(rt, card, dek, req, usage)
            _audit_signed(session, rt, actor, row, card, req, usage, scheme)
            return Signature(signature=signature, scheme=scheme.value, certificate_pem=cert_pem)
    dek = _session_dek(rt, actor, row, card, req, usage)
    signature, scheme = _signed(rt, card, dek, req, usage)
    with transaction(rt.db) as session:
        _audit_signed(session, rt, actor, row, card, req, usage, scheme)
    return Signature(signature=signature, scheme=scheme.value, certificate_pem=cert_pem)


def _signed(
    rt: Runtime, card: CardRow, dek: bytearray, req: SignRequest, usage: CertUsage
) -> tuple[bytes, ckeys.SignatureScheme]:
    """The digest signed with the card's key of ``usage`` (the DEK and the key wiped)."""
    try:
        sealed = open_record(rt.master_key, card).key(usage.value)
        pkcs8 = open_private_key(dek, card_id=card.id, sealed=sealed)
    finally:
        wipe(dek)
    # a card issued through PC/SC may hold keys of different algorithms in 9A and 9C
    scheme = ckeys.SignatureScheme(req.scheme) if req.scheme else default_scheme(sealed.algorithm)
    try:
        key = ckeys.load_private_key(pkcs8, trusted=True)
        return ckeys.sign_digest(key, req.digest, hash_alg=req.hash_alg, scheme=scheme), scheme
    finally:
        wipe(pkcs8)


def _audit_signed(
    session: Session,
    rt: Runtime,
    actor: Actor,
    row: SessionRow,
    card: CardRow,
    req: SignRequest,
    usage: CertUsage,
    scheme: ckeys.SignatureScheme,
) -> None:
    audit.record_for_card(
        session,
        rt,
        actor.as_holder(card.person_id),
        card,
        action=AuditAction.CARD_SIGNED,
        organisation_id=row.organisation_id,
        details={
            "key": usage.value,
            "hash": req.hash_alg,
            "scheme": scheme.value,
            "digest": req.digest.hex(),
            "session": row.id,
        },
    )


def _session_dek(
    rt: Runtime, actor: Actor, row: SessionRow, card: CardRow, req: SignRequest, usage: CertUsage
) -> bytearray:
    try:
        dek = unwrap_session(row.session_wrap, req.session_key, session_id=row.id)
    except WrongSecret:
        raise SessionInvalid("The session key does not match this session.") from None
    if usage is not CertUsage.CONTENT_COMMITMENT:
        return dek
    wipe(dek)
    if not req.passcode:
        raise InvalidInput(
            "Signing with the content-commitment key needs your passcode.", field="passcode"
        )
    with rt.kdf_gate.admitted():
        reserved = lockout.reserve_attempt(rt, card.id)
        with rt.kdf_gate.running():
            try:
                opened: bytearray | None = open_passcode_slot(
                    open_record(rt.master_key, card), req.passcode
                )
            except WrongSecret:
                opened = None
        if opened is None:
            raise lockout.passcode_wrong(
                rt, actor, card.id, reserved, action=AuditAction.SIGN_PASSCODE
            )
    with transaction(rt.db) as session:
        card_queries.passcode_right(session, card.id)
    return opened


# Built once: every signature returns its certificate, and SQLAlchemy reuses the compiled
# form of a statement object it has seen. Only the PEM, as a column: no ORM row is built.
_VALID_CERTIFICATE_PEM = (
    select(Certificate.pem)
    .where(
        Certificate.card_id == bindparam("cert_card"),
        Certificate.usage == bindparam("usage"),
        Certificate.status == "valid",
    )
    .order_by(Certificate.created_at.desc())
    .limit(1)
)


def _certificate_pem(conn: Connection, card: CardRow, usage: CertUsage) -> str:
    pem = conn.scalar(_VALID_CERTIFICATE_PEM, {"cert_card": card.id, "usage": usage.value})
    if pem is None:
        raise InvalidInput(f"The card has no valid {usage.label} certificate.")
    return pem


def certificates(rt: Runtime, actor: Actor, token: str) -> dict[str, str]:
    """The card's certificates (PEM by usage) in a card session; raises SessionInvalid."""
    with transaction(rt.db) as session:
        _row, card = card_sessions.use(session, rt, token, client_address=actor.client_address)
        return {
            c.usage: c.pem
            for c in session.scalars(
                select(Certificate).where(
                    Certificate.card_id == card.id, Certificate.status == "valid"
                )
            )
        }
