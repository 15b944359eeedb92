"""The PIV applet's state per card and per virtual reader (DESIGN §3.8)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cardvault.domain.vocabulary import AppletOrigin
from cardvault.store.models.base import Base, _created, _id
from cardvault.store.types import StrEnumType


class PivCard(Base):
    """A card's PIV applet (DESIGN §3.8): its state between APDUs and its sealed secrets.

    ``state`` is the card part of the applet state (``dump_state``, no security status);
    ``version`` moves with every change, so an APDU is committed only against the state it
    was computed from (compare-and-swap): concurrent PIN tries cannot both count from the
    same retry counter. ``secrets`` holds the PIN and PUK verifiers and the management key,
    sealed under the master key and bound to the card and ``secrets_version``.
    """

    __tablename__ = "piv_cards"
    card_id: Mapped[str] = mapped_column(
        ForeignKey("cards.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    secrets: Mapped[bytes] = mapped_column(LargeBinary)
    secrets_version: Mapped[int] = mapped_column(Integer, default=1)
    #: the public key of each generated slot (slot hex -> SPKI base64): public facts
    public_keys: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    #: how the applet was written: ``pcsc`` (a card management system personalised it) or
    #: ``service`` (built from the keys and certificates the service issued, §3.8 revised)
    origin: Mapped[AppletOrigin] = mapped_column(
        StrEnumType(AppletOrigin, 10), default=AppletOrigin.PCSC, server_default="pcsc"
    )
    #: when three wrong card PINs blocked the PIN; a card session opened after it may set a
    #: new PIN without the old one (services/piv/card_pin.py). None while not blocked.
    pin_blocked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class PivLink(Base):
    """One virtual reader a card is inserted in: a connector relaying APDUs for a session.

    The link keeps what belongs to that connection (security status, data in flight) and
    dies with the card session it was opened in. An issuance link also keeps
    ``wrap(DEK, IK)``: IK is held only by the RA's connector.
    """

    __tablename__ = "piv_links"
    id: Mapped[str] = _id()
    card_id: Mapped[str] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("card_sessions.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(10))
    link_state: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    issuance_wrap: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: the link's channel key sealed under the master key (DESIGN §3.5, §3.8 revised)
    channel_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: the last request's sequence number and its answer (sealed under a key from SK/IK),
    #: so that a request repeated after a network error is answered, not executed twice
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    last_response: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: HMAC of the PIN last verified on this link, keyed from SK/IK, sealed under the master
    #: key (services/piv/recheck.py): the same PIN again needs no second Argon2id run
    pin_recheck: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime] = _created()
