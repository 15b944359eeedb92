"""The organisation's shortest card PIN (issues 18 and 19) holds wherever a card PIN is set
or changed: the agent's ``pin`` (the service the API calls), enrolment's first PIN, and
CHANGE REFERENCE DATA from smartcard software, which answers 6A80 and keeps the old PIN.
On SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from tests.support import auth as a
from tests.support import piv_service as p

from cardvault.card.apdu import Sw
from cardvault.card.piv import PinRef
from cardvault.errors import InvalidInput
from cardvault.services.directory import registry as directory
from cardvault.services.piv import card_pin
from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import PivCard
from cardvault.web.errors import status_of

SEVEN = "2718281"
EIGHT = "27182818"


@pytest.fixture
def signed_in(rt: Runtime, operator: Actor) -> tuple[a.HolderFixture, str, bytes]:
    org = a.open_org(rt, operator)
    directory.update_policy(rt, operator, "ORG1", {"card_pin_min_length": 8})
    holder = a.holder(rt, operator, org)
    result = a.login(Engine(rt), holder, code=holder.code(time.time()))
    assert result.session is not None
    return holder, result.session.token, result.session_key


def test_the_agent_may_not_set_or_change_a_pin_below_the_minimum(
    rt: Runtime, signed_in: tuple[a.HolderFixture, str, bytes]
) -> None:
    holder, token, key = signed_in
    with pytest.raises(InvalidInput, match="at least 8 digits") as refused:
        card_pin.set_pin(rt, a.client(), token=token, session_key=key, new_pin=SEVEN)
    assert status_of(refused.value) == 422
    with rt.db() as s:
        assert s.get(PivCard, holder.card.card_id) is None  # nothing built
    found = card_pin.status(rt, a.client(), token=token, session_key=key)
    assert found.minimum == 8
    card_pin.set_pin(rt, a.client(), token=token, session_key=key, new_pin=EIGHT)
    with pytest.raises(InvalidInput, match="at least 8 digits"):
        card_pin.set_pin(
            rt, a.client(), token=token, session_key=key, new_pin=SEVEN, current_pin=EIGHT
        )
    left = card_pin.status(rt, a.client(), token=token, session_key=key).attempts_left
    assert left == 3  # refused before the current PIN was tried


def test_smartcard_software_may_not_change_the_pin_below_the_minimum(
    rt: Runtime, signed_in: tuple[a.HolderFixture, str, bytes]
) -> None:
    _holder, token, key = signed_in
    card_pin.set_pin(rt, a.client(), token=token, session_key=key, new_pin=EIGHT)
    reader = p.open_reader(rt, token, key)
    assert reader.change(PinRef.PIV_PIN, EIGHT.encode(), SEVEN.encode()) == Sw.INCORRECT_DATA
    assert reader.verify(EIGHT.encode()) == Sw.SUCCESS  # the old PIN still holds
    assert reader.change(PinRef.PIV_PIN, EIGHT.encode(), b"31415926") == Sw.SUCCESS
    assert reader.verify(b"31415926") == Sw.SUCCESS


def test_the_first_pin_at_enrolment_meets_the_minimum(rt: Runtime, operator: Actor) -> None:
    org = a.open_org(rt, operator)
    directory.update_policy(rt, operator, "ORG1", {"card_pin_min_length": 7})
    holder = a.holder(rt, operator, org)
    with pytest.raises(InvalidInput, match="at least 7 digits"):
        card_pin.provision(rt, operator, card_id=holder.card.card_id, pin="271828", via="test")
    assert card_pin.provision(rt, operator, card_id=holder.card.card_id, pin=SEVEN, via="test")
