"""A card's methods and devices are listed and found in one scope, on both databases: the
card's own rows, only one organisation's when it is given; a row outside the scope is not
found (the caller says "no such …", as for a row that does not exist)."""

from __future__ import annotations

from tests.support import auth as a
from tests.support import factories as f

from cardvault.services.directory.registry import get_org
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.models import Association
from cardvault.store.queries import card_rows


def _org_id(rt: Runtime, code: str) -> str:
    with rt.db() as s:
        return get_org(s, code).id


def test_a_cards_rows_are_listed_only_within_the_organisation_given(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    f.org(rt, operator, "ORG2")
    h = a.holder(rt, operator)
    a.holder(rt, operator)  # another card's method is never listed
    org1, org2 = _org_id(rt, "ORG1"), _org_id(rt, "ORG2")
    with rt.db() as s:
        everywhere = card_rows.of_card(s, Association, h.card.card_id, None)
        here = card_rows.of_card(s, Association, h.card.card_id, org1)
        elsewhere = card_rows.of_card(s, Association, h.card.card_id, org2)
    assert [r.card_id for r in everywhere] == [h.card.card_id]
    assert [r.id for r in here] == [r.id for r in everywhere]
    assert elsewhere == []


def test_a_row_outside_the_card_or_organisation_given_is_not_found(
    rt: Runtime, operator: Actor
) -> None:
    a.open_org(rt, operator)
    f.org(rt, operator, "ORG2")
    h, stranger = a.holder(rt, operator), a.holder(rt, operator)
    org1, org2 = _org_id(rt, "ORG1"), _org_id(rt, "ORG2")
    with rt.db() as s:
        (mine,) = card_rows.of_card(s, Association, h.card.card_id, None)

    def find(*, organisation_id: str | None, card_id: str | None) -> Association | None:
        with rt.db() as s:
            return card_rows.in_scope_for_update(
                s, Association, mine.id, organisation_id=organisation_id, card_id=card_id
            )

    assert find(organisation_id=None, card_id=None) is not None
    found = find(organisation_id=org1, card_id=h.card.card_id)
    assert found is not None
    assert found.id == mine.id
    assert find(organisation_id=org2, card_id=None) is None
    assert find(organisation_id=None, card_id=stranger.card.card_id) is None
    with rt.db() as s:
        assert (
            card_rows.in_scope_for_update(
                s, Association, "no-such-id", organisation_id=None, card_id=None
            )
            is None
        )
