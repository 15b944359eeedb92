"""The relay's SQL, built once.

Every APDU the service answers runs the same few statements. Building them with SQLAlchemy
expressions on each call (and the ORM's bulk-update preparation) cost more than running them
-- about 0.6 ms a statement on SQLite, 2 ms on PostgreSQL -- so they are built here once,
with bound parameters, and the writes go to the tables without the ORM. (An UPDATE's bound
parameters may not be named like a column: hence ``where_*`` and ``new_*``.)
"""

from __future__ import annotations

from sqlalchemy import bindparam, exists, func, select, update

from cardvault.services.piv.rows import (
    CardRow,
    LinkRow,
    OrganisationRow,
    PivRow,
    SessionRow,
    columns_of,
)
from cardvault.store.models import (
    Card,
    CardSession,
    Organisation,
    PivCard,
    PivLink,
    UsedNonce,
    table_of,
)

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

#: compare-and-swap of a card's PIV row; parameters ``where_card``, ``seen`` (the version the
#: APDU was computed from) and the new ``new_state``, ``new_secrets``, ``new_secrets_version``,
#: ``new_public_keys``, ``new_pin_blocked_at``, ``now``
SAVE_CARD = (
    update(_cards)
    .where(_cards.c.card_id == bindparam("where_card"), _cards.c.version == bindparam("seen"))
    .values(
        state=bindparam("new_state"),
        version=_cards.c.version + 1,
        secrets=bindparam("new_secrets"),
        secrets_version=bindparam("new_secrets_version"),
        public_keys=bindparam("new_public_keys"),
        pin_blocked_at=bindparam("new_pin_blocked_at"),
        updated_at=bindparam("now"),
    )
)

#: compare-and-swap of a link; parameters ``where_link``, ``seen`` and the new ``new_link_state``,
#: ``new_last_seq``, ``new_last_response``, ``new_pin_recheck``, ``now``
SAVE_LINK = (
    update(_links)
    .where(_links.c.id == bindparam("where_link"), _links.c.version == bindparam("seen"))
    .values(
        link_state=bindparam("new_link_state"),
        version=_links.c.version + 1,
        last_seq=bindparam("new_last_seq"),
        last_response=bindparam("new_last_response"),
        pin_recheck=bindparam("new_pin_recheck"),
        last_used_at=bindparam("now"),
    )
)
