"""The relay's SQL, built once.

Every APDU the service answers runs the same few statements. Building them with SQLAlchemy
expressions on each call (and the ORM's bulk-update preparation) cost more than running them
-- about 0.6 ms a statement on SQLite, 2 ms on PostgreSQL -- so they are built here once,
with bound parameters, and the writes go to the tables without the ORM. (An UPDATE's bound
parameters may not be named like a column: hence ``where_*`` and ``new_*``.)
"""

from __future__ import annotations

from sqlalchemy import Table, Update, bindparam, exists, func, select, update

from cardvault.store.models import (
    Card,
    CardSession,
    Organisation,
    PivCard,
    PivLink,
    UsedNonce,
    table_of,
)
from cardvault.store.queries.organisations import OrganisationRow
from cardvault.store.queries.rows import CardRow, LinkRow, PivRow, SessionRow, columns_of

__all__ = [
    "CARD_COLUMNS",
    "LINK_COLUMNS",
    "ORGANISATION_COLUMNS",
    "PIV_COLUMNS",
    "SAVE_CARD",
    "SAVE_LINK",
    "SESSION_COLUMNS",
    "SNAPSHOT",
    "TOUCH_SESSION",
]

_ACTING = func.coalesce(CardSession.acting_organisation_id, CardSession.organisation_id)

#: the request's channel ``jti`` was spent already (None: the envelope was spent on opening)
_SPENT = exists().where(UsedNonce.nonce == bindparam("jti")).label("spent")

_sessions = table_of(CardSession)
_cards = table_of(PivCard)
_links = table_of(PivLink)

#: the columns of the snapshot's plain rows (rows.py), in order
SESSION_COLUMNS = columns_of(_sessions, SessionRow)
LINK_COLUMNS = columns_of(_links, LinkRow)
PIV_COLUMNS = columns_of(_cards, PivRow)
CARD_COLUMNS = columns_of(table_of(Card), CardRow)
ORGANISATION_COLUMNS = columns_of(table_of(Organisation), OrganisationRow)

#: everything an APDU is computed from (snapshot.py): the columns of the session, link, PIV
#: row, card and organisation, then whether the jti was spent; parameters ``token_hash``,
#: ``link_id``, ``jti``
SNAPSHOT = (
    select(
        *SESSION_COLUMNS,
        *LINK_COLUMNS,
        *PIV_COLUMNS,
        *CARD_COLUMNS,
        *ORGANISATION_COLUMNS,
        _SPENT,
    )
    .select_from(CardSession)
    .join(PivLink, PivLink.session_id == CardSession.id)
    .join(Card, Card.id == PivLink.card_id)
    .join(PivCard, PivCard.card_id == Card.id)
    .join(Organisation, Organisation.id == _ACTING)
    .where(
        CardSession.token_hash == bindparam("token_hash"),
        PivLink.id == bindparam("link_id"),
    )
)

#: restart a live session's idle timer; parameters ``where_session``, ``now``, ``idle``
TOUCH_SESSION = (
    update(_sessions)
    .where(
        _sessions.c.id == bindparam("where_session"),
        _sessions.c.expires_at > bindparam("now"),
        _sessions.c.idle_expires_at > bindparam("now"),
    )
    .values(last_used_at=bindparam("now"), idle_expires_at=bindparam("idle"))
)


def _compare_and_swap(
    table: Table, key: str, where: str, columns: tuple[str, ...], *, stamped: str
) -> Update:
    """An UPDATE of one row that applies only if the row's ``version`` is still ``seen``,
    and moves it on: each of ``columns`` takes the parameter ``new_<column>``, and
    ``stamped`` takes ``now``. The relay's writes are all of this shape; a zero rowcount
    means another APDU won the race."""
    values: dict[str, object] = {column: bindparam(f"new_{column}") for column in columns}
    values |= {"version": table.c.version + 1, stamped: bindparam("now")}
    return (
        update(table)
        .where(table.c[key] == bindparam(where), table.c.version == bindparam("seen"))
        .values(values)
    )


#: a card's PIV row; parameters ``where_card``, ``seen`` (the version the APDU was computed
#: from), ``new_state``, ``new_secrets``, ``new_secrets_version``, ``new_public_keys``,
#: ``new_pin_blocked_at``, ``now``
SAVE_CARD = _compare_and_swap(
    _cards,
    "card_id",
    "where_card",
    ("state", "secrets", "secrets_version", "public_keys", "pin_blocked_at"),
    stamped="updated_at",
)

#: a reader link; parameters ``where_link``, ``seen``, ``new_link_state``, ``new_last_seq``,
#: ``new_last_response``, ``new_pin_recheck``, ``now``
SAVE_LINK = _compare_and_swap(
    _links,
    "id",
    "where_link",
    ("link_state", "last_seq", "last_response", "pin_recheck"),
    stamped="last_used_at",
)
