"""A database dump taken while a session is open holds nothing that opens the card
without the client's SK (DESIGN §3.2)."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import MetaData, select
from tests.support import auth as a
from tests.support import factories as f

from cardvault.crypto.keyslots import WrongSecret, open_passcode_slot, unwrap_session
from cardvault.services.cards.sealing import open_record
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Card, CardSession


def _dump(rt: Runtime) -> bytes:
    """Every value of every row of every table, as bytes."""
    meta = MetaData()
    meta.reflect(rt.engine)
    out = bytearray()
    with rt.engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(table.select()):
                for value in row:
                    out += value if isinstance(value, bytes | memoryview) else str(value).encode()
                    out += b"\n"
    return bytes(out)


def test_dump_during_a_session_does_not_open_the_card(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    result = a.login(Engine(rt), h, code=h.code())
    assert result.session is not None
    dump = _dump(rt)
    sk, token = result.session_key, result.session.token
    with rt.db() as s:
        card = s.get(Card, h.card.card_id)
        row = s.scalar(select(CardSession))
        assert card is not None
        assert row is not None
    # what only the client has is not in the dump
    for secret in (sk, base64.b64encode(sk), token.encode(), f.STRONG_PASSCODE.encode()):
        assert secret not in dump
    # the DEK (recovered here with the master key, which a dump does not contain) is not either
    dek = open_passcode_slot(open_record(rt.master_key, card), f.STRONG_PASSCODE)
    assert bytes(dek) not in dump
    # the session wrap opens with the client's SK and with nothing else
    assert bytes(unwrap_session(row.session_wrap, sk, session_id=row.id)) == bytes(dek)
    for guess in (bytes(32), row.token_hash.encode()[:32], card.id.encode()[:32]):
        with pytest.raises(WrongSecret):
            unwrap_session(row.session_wrap, guess, session_id=row.id)
