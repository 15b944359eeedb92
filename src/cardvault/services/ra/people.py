"""Adding people to the RA's organisation: one by one, from a CSV file, or a person another
organisation already has (issue 19).

A CSV import is checked whole first (the dry run): every row gets its problems, in words,
and nothing is written while any row has one — unless the RA chooses to import the good
rows only. The rows are then written in one transaction, so an import is never half-done.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DbIntegrityError
from sqlalchemy.orm import Session

from cardvault.domain import identifiers
from cardvault.domain.audit_actions import AuditAction
from cardvault.errors import Conflict, InvalidInput
from cardvault.services.directory import registry as directory
from cardvault.services.directory.errors import DuplicateUserId
from cardvault.services.directory.views import PersonView
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.errors import ElsewhereAlready, ImportHasProblems, NoSuchPerson
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Membership, Organisation, Person

#: the columns a CSV file must have (a header row names them; order is free)
COLUMNS = ("user_id", "forename", "surname", "email", "mobile")
MAX_ROWS = 5000
MAX_BYTES = 2 * 1024 * 1024
#: a cell starting with one of these is a formula to a spreadsheet (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, kw_only=True)
class NewMember:
    """One person as an RA types them (or a CSV row holds them), already in canonical form."""

    user_id: str
    forename: str
    surname: str
    email: str | None
    phone: str | None


@dataclass(frozen=True, kw_only=True)
class ImportRow:
    """One data row of the file: its line number, what it holds, and what is wrong with it."""

    line: int
    user_id: str
    name: str
    problems: tuple[str, ...]
    person: NewMember | None = None

    @property
    def ok(self) -> bool:
        """Whether the row can be imported."""
        return not self.problems


@dataclass(frozen=True, kw_only=True)
class ImportCheck:
    """The dry run: every row, good or bad; a file-level problem leaves ``rows`` empty."""

    rows: tuple[ImportRow, ...] = ()
    problem: str | None = None

    @property
    def good(self) -> tuple[ImportRow, ...]:
        """The rows that can be imported."""
        return tuple(r for r in self.rows if r.ok)

    @property
    def bad(self) -> tuple[ImportRow, ...]:
        """The rows with a problem."""
        return tuple(r for r in self.rows if not r.ok)


@dataclass(frozen=True, kw_only=True)
class ImportResult:
    """What an import made: the user ids created, the bad rows skipped, the check behind it."""

    created: tuple[str, ...]
    skipped: int = 0
    check: ImportCheck = field(default_factory=ImportCheck)


def new_member(*, user_id: str, forename: str, surname: str, email: str, mobile: str) -> NewMember:
    """The fields in canonical form; InvalidInput (with its field) for the first bad one."""
    fields = {"user_id": user_id, "forename": forename, "surname": surname}
    for name, value in {**fields, "email": email, "mobile": mobile}.items():
        if (problem := formula_problem(name, value)) is not None:
            raise InvalidInput(problem, field=name)
    return NewMember(
        user_id=identifiers.user_id(user_id),
        forename=identifiers.person_name(forename, field="forename"),
        surname=identifiers.person_name(surname, field="surname"),
        email=identifiers.email(email) if email.strip() else None,
        phone=identifiers.phone(mobile) if mobile.strip() else None,
    )


def formula_problem(name: str, value: str) -> str | None:
    """Why a cell would run as a formula in a spreadsheet (CSV injection), or None.

    A mobile number may start with ``+`` when digits and spaces follow (``+44 7700 900123``).
    """
    text = value.lstrip()
    if value[:1] not in FORMULA_STARTS[4:] and text[:1] not in FORMULA_STARTS[:4]:
        return None
    if name == "mobile" and re.fullmatch(r"\+[0-9 ]+", text):
        return None
    first = (
        "a tab"
        if value[:1] == "\t"
        else "a carriage return"
        if value[:1] == "\r"
        else (f"“{text[0]}”")
    )
    return (
        f"The {name.replace('_', ' ')} starts with {first}, which a spreadsheet would run as "
        "a formula."
    )


def create(rt: Runtime, ctx: RaContext, new: NewMember) -> PersonView:
    """A new person, a member of the RA's organisation (audited).

    DuplicateUserId when the user id exists here; ``ElsewhereAlready`` when it belongs to a
    person of another organisation (the RA adds them instead); Conflict for a taken email.
    """
    try:
        with transaction(rt.db) as session:
            _refuse_existing(session, ctx, new)
            person = _insert(session, rt, ctx, new, via="form")
            return PersonView.of(person)
    except DbIntegrityError as exc:
        raise _raced(exc) from exc


def _raced(exc: DbIntegrityError) -> Exception:
    """Someone added the same user id or email address between the check and the write."""
    if directory.unique_violation(exc):
        return Conflict(
            "Someone added a person with this user id or email address a moment ago; "
            "nothing was written. Search for them, or check again.",
            field="user_id",
        )
    return exc


def _refuse_existing(session: Session, ctx: RaContext, new: NewMember) -> None:
    existing = session.scalar(select(Person).where(Person.user_id == new.user_id))
    if existing is not None:
        if directory.is_member(session, existing.id, ctx.organisation_id):
            raise DuplicateUserId(
                f"{existing.common_name} already has user id {new.user_id} in "
                f"{ctx.organisation_code}.",
                field="user_id",
            )
        raise ElsewhereAlready(
            f"User id {new.user_id} belongs to a person of another organisation. Use "
            "“Add a person from another organisation” to add them to yours.",
            field="user_id",
        )
    if new.email and session.scalar(select(Person.id).where(Person.email == new.email)):
        raise Conflict(f"Another person already uses the email address {new.email}.", field="email")


def _insert(session: Session, rt: Runtime, ctx: RaContext, new: NewMember, *, via: str) -> Person:
    person = Person(
        user_id=new.user_id,
        forename=new.forename,
        surname=new.surname,
        email=new.email,
        phone=new.phone,
        common_name=f"{new.forename} {new.surname}",
    )
    session.add(person)
    session.flush()
    session.add(Membership(person_id=person.id, organisation_id=ctx.organisation_id))
    ctx.audit_act(
        session,
        rt,
        AuditAction.PERSON_CREATED,
        person_id=person.id,
        details={"user_id": new.user_id, "via": via},
    )
    return person


# --- CSV import -----------------------------------------------------------------------------


def check_csv(rt: Runtime, ctx: RaContext, data: bytes) -> ImportCheck:
    """The dry run: parse and check every row against the file and the directory."""
    text, problem = _decode(data)
    if problem:
        return ImportCheck(problem=problem)
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        return ImportCheck(problem=f"The file is not valid CSV: {exc}.")
    header_problem = _header_problem(records)
    if header_problem:
        return ImportCheck(problem=header_problem)
    header = [h.strip().lower() for h in records[0]]
    with rt.db() as session:
        rows = _check_rows(session, ctx, header, records[1:])
    return ImportCheck(rows=tuple(rows))


def _decode(data: bytes) -> tuple[str, str | None]:
    if not data.strip():
        return "", "The file is empty. Choose a CSV file with a header row and one person a row."
    if len(data) > MAX_BYTES:
        return "", f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB. Split it."
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return "", (
            f"The file is not UTF-8 (line {line} has bytes that are not). Save it as "
            "“CSV UTF-8” and try again."
        )


def _header_problem(records: list[list[str]]) -> str | None:
    if not records:
        return "The file has no header row."
    header = [h.strip().lower() for h in records[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        return (
            f"The header row lacks the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}. It must name {', '.join(COLUMNS)}."
        )
    if len(records) - 1 > MAX_ROWS:
        return f"The file has more than {MAX_ROWS} people. Split it."
    if len(records) == 1:
        return "The file has a header row but no people."
    return None


def _check_rows(
    session: Session, ctx: RaContext, header: list[str], records: list[list[str]]
) -> list[ImportRow]:
    seen_ids: dict[str, int] = {}
    seen_mails: dict[str, int] = {}
    out = []
    for number, record in enumerate(records, start=2):
        if not any(cell.strip() for cell in record):
            continue
        out.append(_check_row(session, ctx, header, number, record, seen_ids, seen_mails))
    return out


def _check_row(
    session: Session,
    ctx: RaContext,
    header: list[str],
    line: int,
    record: list[str],
    seen_ids: dict[str, int],
    seen_mails: dict[str, int],
) -> ImportRow:
    cells = dict(zip(header, record, strict=False))
    values = {c: cells.get(c, "") for c in COLUMNS}
    shown_id = values["user_id"].strip()[:20]
    name = f"{values['forename'].strip()} {values['surname'].strip()}"[:100]
    if len(record) != len(header):
        problem = f"has {len(record)} cells where the header has {len(header)}"
        return ImportRow(line=line, user_id=shown_id, name=name, problems=(problem,))
    problems: list[str] = []
    new = None
    try:
        new = new_member(**values)
    except InvalidInput as exc:
        problems.append(exc.message)
    if new is not None:
        problems += _row_conflicts(session, ctx, new, line, seen_ids, seen_mails)
    return ImportRow(
        line=line,
        user_id=new.user_id if new else shown_id,
        name=name,
        problems=tuple(problems),
        person=new if not problems else None,
    )


def _row_conflicts(
    session: Session,
    ctx: RaContext,
    new: NewMember,
    line: int,
    seen_ids: dict[str, int],
    seen_mails: dict[str, int],
) -> list[str]:
    problems = []
    if new.user_id in seen_ids:
        problems.append(f"User id {new.user_id} is also on line {seen_ids[new.user_id]}.")
    seen_ids.setdefault(new.user_id, line)
    if new.email and new.email in seen_mails:
        problems.append(f"Email address {new.email} is also on line {seen_mails[new.email]}.")
    if new.email:
        seen_mails.setdefault(new.email, line)
    try:
        _refuse_existing(session, ctx, new)
    except (DuplicateUserId, ElsewhereAlready, Conflict) as exc:
        problems.append(exc.message)
    return problems


def import_csv(
    rt: Runtime, ctx: RaContext, data: bytes, *, good_rows_only: bool = False
) -> ImportResult:
    """Check again, then write every row in one transaction (audited per person).

    Raises ImportHasProblems when any row is bad and ``good_rows_only`` is not chosen, and
    InvalidInput for a file-level problem; nothing is written in either case.
    """
    check = check_csv(rt, ctx, data)
    if check.problem:
        raise InvalidInput(check.problem, field="file")
    if check.bad and not good_rows_only:
        raise ImportHasProblems(
            f"{len(check.bad)} of {len(check.rows)} rows have problems; nothing was imported.",
            field="file",
        )
    if not check.good:
        raise InvalidInput("No row can be imported.", field="file")
    try:
        with transaction(rt.db) as session:
            for row in check.good:
                assert row.person is not None
                _refuse_existing(session, ctx, row.person)  # a race since the check: all or none
                _insert(session, rt, ctx, row.person, via="csv")
    except DbIntegrityError as exc:
        raise _raced(exc) from exc
    return ImportResult(
        created=tuple(r.user_id for r in check.good), skipped=len(check.bad), check=check
    )


# --- a person of another organisation --------------------------------------------------------


def add_existing(rt: Runtime, ctx: RaContext, user_id: str, email: str) -> PersonView:
    """Make a person of another organisation a member of this one too (audited): they keep
    their one card, which now works here as well (DESIGN §3.6).

    The RA names them by user id *and* email address, both as the directory has them, so that
    a user id alone does not reveal who a stranger is; NotFound unless both match.
    """
    uid = identifiers.user_id(user_id)
    mail = identifiers.email(email)
    with transaction(rt.db) as session:
        person = session.scalar(select(Person).where(Person.user_id == uid))
        if person is None or person.email is None or person.email.casefold() != mail.casefold():
            raise NoSuchPerson(
                "No person has that user id with that email address. Check both, or create "
                "the person instead.",
                field="user_id",
            )
        if directory.is_member(session, person.id, ctx.organisation_id):
            raise Conflict(
                f"{person.common_name} is already in {ctx.organisation_code}.", field="user_id"
            )
        session.add(Membership(person_id=person.id, organisation_id=ctx.organisation_id))
        person.left_at = None
        ctx.audit_act(
            session,
            rt,
            AuditAction.PERSON_MEMBERSHIP_ADDED,
            person_id=person.id,
            details={"user_id": uid},
        )
        return PersonView.of(person)


def organisation_codes(session: Session, person_id: str) -> list[str]:
    """The codes of the organisations the person belongs to, in order."""
    return list(
        session.scalars(
            select(Organisation.code)
            .join(Membership, Membership.organisation_id == Organisation.id)
            .where(Membership.person_id == person_id)
            .order_by(Organisation.code)
        )
    )
