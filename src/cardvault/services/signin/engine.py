"""The authentication engine (DESIGN §3.2, §3.3): identifier → passcode → second factor → session.

1. The identifier is resolved to a card and organisation. Every refusal before the
   passcode (unknown identifier, card locked, revoked or not active, no RA role for an RA
   sign-in, caller outside the organisation's networks, a sign-in route the policy does not
   allow) costs the same KDF and gets the same answer as a wrong passcode (DESIGN §3.3
   revised): the reason goes to the audit log only.
2. The passcode attempt is reserved atomically, then the passcode slot is opened (one KDF,
   admitted by the KDF gate). The DEK is at once re-wrapped under a fresh session key SK,
   which goes back to the client only; the service keeps ``wrap(DEK, SK)``.
3. A second-factor plug-in verifies the holder's response; the transaction becomes a card
   session. Each answer is reserved on the card's second-factor counter before it is
   checked (``factor_lockout``): five wrong in a row, across transactions, lock the card.
   Every step is audited, failures with their reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import NoReturn

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.crypto.keyslots import (
    WrongSecret,
    open_passcode_slot,
)
from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.vocabulary import AuthState, CardStatus
from cardvault.errors import InvalidInput
from cardvault.json_types import JsonInput
from cardvault.services.cards.sealing import hand_over, open_record
from cardvault.services.networks import allow_list as network
from cardvault.services.networks.errors import NetworkNotAllowed
from cardvault.services.signin import answers, factor_lockout, lockout, org_choice
from cardvault.services.signin import refusals as signin_refusals
from cardvault.services.signin.answers import LOCKED_NOW, MAX_FACTOR_FAILURES
from cardvault.services.signin.errors import (
    CardLocked,
    FactorFailed,
    NoSecondFactor,
    SecondFactorLocked,
    SignInFailed,
    TransactionInvalid,
)
from cardvault.services.signin.factor_lockout import Reservation
from cardvault.services.signin.factors import (
    FactorAnswer,
    FactorError,
    SecondFactor,
    codes,
    installed,
)
from cardvault.services.signin.identification import Target, resolve
from cardvault.services.signin.views import (
    LoginRequest,
    LoginResult,
    OrganisationChoice,
    SessionGrant,
)
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import reading, transaction
from cardvault.store.models import AuthTransaction, Card, Organisation, Person
from cardvault.store.queries import cards as card_queries
from cardvault.store.types import new_id

__all__ = [
    "LOCKED_NOW",
    "MAX_FACTOR_FAILURES",
    "Engine",
    "LoginRequest",
    "LoginResult",
    "OrganisationChoice",
    "SessionGrant",
]

TRANSACTION_MINUTES = 5
PURPOSES = ("holder", "ra")


class Engine:
    """The engine with its installed second factors (plug-ins)."""

    def __init__(self, rt: Runtime, factors: Mapping[str, SecondFactor] | None = None) -> None:
        self.rt = rt
        self.factors = dict(factors) if factors is not None else installed()
        self.check = answers.AnswerCheck(rt, self.factors)

    # -- step 1 and 2 ----------------------------------------------------------------------

    def login(self, actor: Actor, req: LoginRequest) -> LoginResult:
        """Identifier and passcode (and perhaps the second factor inline); raises SignInFailed for
        every refusal before the passcode and for a wrong one, InvalidInput, Busy."""
        if req.purpose not in PURPOSES:
            raise InvalidInput("purpose is holder or ra.", field="purpose")
        if not req.passcode or len(req.passcode) > 256:
            raise InvalidInput("Enter your passcode.", field="passcode")
        target, choices = self._identify(actor, req)
        if choices:  # nothing to check a factor sent with the passcode against yet
            req = replace(req, second_factor=None)
        dek = self._open_passcode(actor, target, req)
        txn_id = new_id()
        sk, wrap = hand_over(dek, txn_id)
        with transaction(self.rt.db) as session:
            return self._passcode_accepted(session, actor, req, target, txn_id, wrap, sk, choices)

    def _identify(
        self, actor: Actor, req: LoginRequest
    ) -> tuple[Target, tuple[OrganisationChoice, ...]]:
        """The target, and the organisations to choose from when several would admit a
        sign-in whose identifier names none (``org_choice``; empty otherwise)."""
        choices: tuple[OrganisationChoice, ...] = ()
        with reading(self.rt.db) as session:
            target = resolve(session, req.identifier_kind, req.identifier, req.organisation)
            refusal = (
                signin_refusals.why_refused(session, actor, req.purpose, target)
                if target is not None
                else "unknown identifier"
            )
            if target and req.organisation is None and target.route in org_choice.UNSCOPED:
                orgs = org_choice.admitting(session, actor, req.purpose, target)
                if orgs:
                    target, refusal = replace(target, organisation=orgs[0]), None
                if len(orgs) > 1:
                    choices = tuple(org_choice.choice(o) for o in orgs)
        if refusal is not None:
            with self.rt.kdf_gate.admitted():
                self._decoy(actor, req, target, refusal)
        assert target is not None
        return target, choices

    def _decoy(
        self, actor: Actor, req: LoginRequest, target: Target | None, reason: str
    ) -> NoReturn:
        details = {"identifier_kind": req.identifier_kind, "purpose": req.purpose}
        signin_refusals.decoy(self.rt, actor, req.passcode, target, reason, details)

    def _open_passcode(self, actor: Actor, target: Target, req: LoginRequest) -> bytearray:
        card = target.card
        with self.rt.kdf_gate.admitted():
            try:
                reserved = lockout.reserve_attempt(self.rt, card.id)
            except CardLocked as exc:
                # locked meanwhile, or every attempt in flight: still answered like the rest
                self._decoy(actor, req, target, exc.reason)
            with self.rt.kdf_gate.running():
                try:
                    return open_passcode_slot(open_record(self.rt.master_key, card), req.passcode)
                except WrongSecret:
                    pass
            lockout.passcode_wrong(
                self.rt,
                actor,
                card.id,
                reserved,
                action=AuditAction.AUTH_PASSCODE,
                route=target.route,
            )
            raise SignInFailed()

    def _passcode_accepted(
        self,
        session: Session,
        actor: Actor,
        req: LoginRequest,
        target: Target,
        txn_id: str,
        wrap: bytes,
        sk: bytes,
        choices: tuple[OrganisationChoice, ...] = (),
    ) -> LoginResult:
        """The transaction, waiting for its second factor (or, with ``choices``, for its
        organisation); checked at once when it came with the passcode, its place on the
        card's counter reserved in this same database transaction (``reserved_here``).

        The transaction's row is written only when it waits for something: a sign-in whose
        second factor came with the passcode and was right, or that has no second factor,
        never needs it (no push can name a transaction that was never written)."""
        # the passcode's counter reset and the card's row locked, fresh, in one statement
        card = card_queries.passcode_right(session, target.card.id)
        # the organisation as ``_identify`` read it in this request, not read again: its
        # policy and networks were checked on that very row a moment ago
        org = session.merge(target.organisation, load=False)
        now = self.rt.clock()
        txn = AuthTransaction(
            id=txn_id,
            card_id=card.id,
            organisation_id=org.id,
            method=target.route,
            purpose=req.purpose,
            state=AuthState.SECOND_FACTOR,
            session_wrap=wrap,
            factor_state={},
            factor_failures=0,
            client_address=actor.client_address,
            client_name=(req.client_name or "")[:100] or None,
            created_at=now,
            expires_at=now + timedelta(minutes=TRANSACTION_MINUTES),
        )
        self._audit(
            session,
            actor,
            target,
            AuditAction.AUTH_PASSCODE,
            "success",
            None,
            {"transaction": txn_id, "method": target.route, "purpose": req.purpose}
            | ({"organisations": [c.code for c in choices]} if choices else {}),
        )
        if choices:
            txn.state = AuthState.ORGANISATION
            session.add(txn)
            return LoginResult(
                transaction_id=txn_id, session_key=sk, second_factors=(), organisations=choices
            )
        ctx = self._context(session, actor, card, org, txn)
        offers = self.check.offered(ctx)
        if not offers:
            return self._no_factor(session, actor, target, txn, sk)
        result = LoginResult(transaction_id=txn_id, session_key=sk, second_factors=offers)
        if req.second_factor is None:
            session.add(txn)
            return result
        try:
            held = factor_lockout.reserved_here(
                session, self.rt, actor, card, organisation_id=org.id
            )
            grant = self._verify_factor(
                ctx,
                req.second_factor,
                held,
                offered={o.method for o in offers},
                person=target.person,
            )
        except (FactorFailed, InvalidInput, SecondFactorLocked) as exc:
            # the passcode was right: keep its reset and the transaction, report the factor
            session.add(txn)
            return replace(result, factor_error=FactorError(code=exc.code, message=exc.message))
        return replace(result, session=grant)

    def _no_factor(
        self, session: Session, actor: Actor, target: Target, txn: AuthTransaction, sk: bytes
    ) -> LoginResult:
        if txn in session:  # written (an organisation chosen since), not just made
            session.delete(txn)
        self._audit(
            session,
            actor,
            target,
            AuditAction.AUTH_SECOND_FACTOR,
            "failure",
            "no second factor associated",
            {"transaction": txn.id},
        )
        error = NoSecondFactor(
            f"No second factor is set up for this card in {target.organisation.name}. "
            "Ask your RA to add one."
        )
        return LoginResult(
            transaction_id=txn.id,
            session_key=sk,
            second_factors=(),
            factor_error=FactorError(code=error.code, message=error.message),
        )

    # -- between 2 and 3: the organisation, when the identifier named none -------------------

    def choose_organisation(self, actor: Actor, transaction_id: str, org_code: str) -> LoginResult:
        """The organisation a sign-in waiting for it goes to (``org_choice``); its second
        factors. The result carries no session key (the client has it from the passcode)."""
        try:
            return self._choose(actor, transaction_id, org_code)
        except org_choice.ChoiceRefused as refused:  # its transaction rolled back
            org_choice.audit(self.rt, actor, refused.refusal)
            raise

    def _choose(self, actor: Actor, transaction_id: str, org_code: str) -> LoginResult:
        with transaction(self.rt.db) as session:
            txn = session.get(AuthTransaction, transaction_id[:36], with_for_update=True)
            if (
                txn is None
                or txn.purpose not in PURPOSES
                or txn.state != AuthState.ORGANISATION
                or self.rt.clock() >= txn.expires_at
            ):
                raise TransactionInvalid("This sign-in has expired or is unknown; start again.")
            target = org_choice.chosen(session, actor, txn, org_code)
            details = {"transaction": txn.id, "organisation": target.organisation.code}
            self._audit(
                session,
                actor,
                target,
                AuditAction.AUTH_ORGANISATION_CHOSEN,
                "success",
                None,
                details,
            )
            ctx = self._context(session, actor, target.card, target.organisation, txn)
            offers = self.check.offered(ctx)
            if not offers:
                return self._no_factor(session, actor, target, txn, b"")
            return LoginResult(transaction_id=txn.id, session_key=b"", second_factors=offers)

    # -- step 3 ----------------------------------------------------------------------------

    def complete_factor(
        self, actor: Actor, transaction_id: str, response: FactorAnswer
    ) -> SessionGrant:
        """The second factor's answer; method ``code`` is a one-time code for whichever
        code factor it belongs to (``complete_code``)."""
        if response.method == codes.ANY_CODE:
            return self.complete_code(actor, transaction_id, response.code or "")
        return self._complete(
            actor, transaction_id, lambda ctx, held: self._verify_factor(ctx, response, held)
        )

    def complete_code(self, actor: Actor, transaction_id: str, code: str) -> SessionGrant:
        """A one-time code, tried against every code factor offered in this transaction
        (the paired phone's own code, an authenticator app): whoever types it cannot tell
        which app it belongs to. One code is one try: a refusal counts one failure."""
        return self._complete(
            actor, transaction_id, lambda ctx, held: self._verify_code(ctx, code, held)
        )

    def _complete(
        self,
        actor: Actor,
        transaction_id: str,
        check: Callable[[answers.Attempt, Reservation], SessionGrant],
    ) -> SessionGrant:
        """One answer: its place on the card's counter is reserved before it is checked, and
        given back when it was not checked (``factor_lockout.reserved``)."""
        card_id, org_id = self._transaction_card(actor, transaction_id)
        try:
            with factor_lockout.reserved(self.rt, actor, card_id, organisation_id=org_id) as held:
                outcome: SessionGrant | FactorFailed
                with transaction(self.rt.db) as session:
                    ctx = self._waiting(session, actor, transaction_id)
                    try:
                        outcome = check(ctx, held)
                    except FactorFailed as exc:
                        outcome = exc
                held.committed = True
        except NetworkNotAllowed:
            # its transaction rolled back: the refusal is audited in one of its own
            signin_refusals.after_passcode(
                self.rt, actor, card_id, org_id, transaction_id, "client network not allowed"
            )
            raise
        if isinstance(outcome, FactorFailed):
            raise outcome
        return outcome

    def _transaction_card(self, actor: Actor, transaction_id: str) -> tuple[str, str]:
        """The card and organisation of a live sign-in (read only), or TransactionInvalid;
        audited when it is the card that refuses (locked since the passcode, say)."""
        with reading(self.rt.db) as session:
            txn = session.get(AuthTransaction, transaction_id)
            card = session.get(Card, txn.card_id) if txn and txn.card_id else None
            if txn is None or card is None or txn.organisation_id is None or not self._live(txn):
                raise TransactionInvalid("This sign-in has expired or is unknown; start again.")
            card_id, org_id, status = card.id, txn.organisation_id, card.status
        if status != CardStatus.ACTIVE:
            signin_refusals.after_passcode(
                self.rt, actor, card_id, org_id, transaction_id, f"card is {status}"
            )
            raise TransactionInvalid("This sign-in has expired or is unknown; start again.")
        return card_id, org_id

    def _live(self, txn: AuthTransaction) -> bool:
        """A sign-in's transaction waiting for its second factor (a reset's opens no session)."""
        return (
            txn.purpose in PURPOSES
            and txn.state == AuthState.SECOND_FACTOR
            and self.rt.clock() < txn.expires_at
        )

    def _waiting(self, session: Session, actor: Actor, transaction_id: str) -> answers.Attempt:
        """The transaction as it waits for its second factor, and its card, both locked for
        this database transaction (the card first of what this transaction writes, so that
        a fifth wrong answer can lock it), or TransactionInvalid.

        The card was active when the answer was reserved; if another answer locked it since,
        this one is still checked (a reserved answer always is, so that concurrent answers
        are counted exactly), but a right one opens nothing (``_open_session``)."""
        txn = session.get(AuthTransaction, transaction_id, with_for_update=True)
        if txn is None or not self._live(txn):
            raise TransactionInvalid("This sign-in has expired or is unknown; start again.")
        card = session.get(Card, txn.card_id, with_for_update=True)
        org = session.get(Organisation, txn.organisation_id)
        assert card is not None and org is not None
        network.check_client(org, actor.client_address)
        return self._context(session, actor, card, org, txn)

    def _verify_code(self, ctx: answers.Attempt, code: str, held: Reservation) -> SessionGrant:
        target = answers.target_of(ctx)
        answer = FactorAnswer(method=codes.ANY_CODE, code=code)
        return self._open_session(ctx, target, self.check.code(ctx, target, answer, held))

    def _verify_factor(
        self,
        ctx: answers.Attempt,
        response: FactorAnswer,
        held: Reservation,
        *,
        offered: set[str] | None = None,
        person: Person | None = None,
    ) -> SessionGrant:
        """``offered``: as ``AnswerCheck.answer``; ``person``: the holder, where the caller
        has already read them."""
        target = answers.target_of(ctx, person)
        verified = self.check.answer(ctx, target, response, held, offered=offered)
        return self._open_session(ctx, target, verified)

    def _open_session(
        self, ctx: answers.Attempt, target: Target, verified: answers.Verified
    ) -> SessionGrant:
        if ctx.card.status != CardStatus.ACTIVE:  # locked while this answer was checked
            raise TransactionInvalid("This card can no longer be used.")
        return answers.open_session(ctx, target, verified)

    # -- helpers ---------------------------------------------------------------------------

    def _context(
        self, session: Session, actor: Actor, card: Card, org: Organisation, txn: AuthTransaction
    ) -> answers.Attempt:
        return answers.attempt(session, self.rt, actor, card, org, txn)

    def _audit(
        self,
        session: Session,
        actor: Actor,
        target: Target,
        action: AuditAction,
        outcome: str,
        reason: str | None,
        details: Mapping[str, JsonInput] | None = None,
    ) -> None:
        answers.audit(session, self.rt, actor, target, action, outcome, reason, details)


def purge_transactions(rt: Runtime) -> None:
    """Drop sign-in transactions past their expiry (maintenance): one that never finished
    still holds its wrapped session key, which must not outlive its use."""
    with transaction(rt.db) as session:
        for txn in session.scalars(
            select(AuthTransaction).where(AuthTransaction.expires_at <= rt.clock())
        ):
            session.delete(txn)
