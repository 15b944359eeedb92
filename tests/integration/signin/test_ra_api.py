"""RA users sign in with their own card, choose a role, and act only in that organisation."""

from __future__ import annotations

import httpx
import pytest
from tests.support import auth as a
from tests.support import factories as f

from cardvault.clients.agent import core
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.services.directory import registry as directory
from cardvault.services.system.runtime import Actor, Runtime


def _ra_login(http: httpx.Client, h: a.HolderFixture) -> core.AgentState:
    data = core.LoginInput(
        identifier_kind="email", identifier=h.email, passcode=f.STRONG_PASSCODE, purpose="ra"
    )
    return core.login(CardvaultApi(http), "test", data, totp=h.code(), ask_code=lambda _: "")


def test_ra_issues_and_revokes_only_in_their_organisation(
    rt: Runtime, operator: Actor, live_url: str
) -> None:
    a.open_org(rt, operator, "ORGA")
    a.open_org(rt, operator, "ORGB")
    ra = a.holder(rt, operator, "ORGA")
    directory.grant_role(rt, operator, user_id=ra.card.user_id, org_code="ORGA", role="ra_agent")
    mine = f.person(rt, operator, "ORGA")
    theirs = f.issued_card(rt, operator, "ORGB")
    with httpx.Client(base_url=live_url, timeout=30) as http:
        api = CardvaultApi(http)
        state = _ra_login(http, ra)
        with pytest.raises(ServiceError, match="Choose an RA role"):
            api.get(f"/api/v1/ra/cards/{theirs.serial}", token=state.token)
        assert api.get("/api/v1/ra/roles", token=state.token)["items"] == [
            {"organisation": "ORGA", "name": "Organisation ORGA", "role": "ra_agent"}
        ]
        with pytest.raises(ServiceError, match="do not have that RA role"):
            api.post(
                "/api/v1/ra/role", {"organisation": "ORGB", "role": "ra_agent"}, token=state.token
            )
        api.post("/api/v1/ra/role", {"organisation": "ORGA", "role": "ra_agent"}, token=state.token)
        issued = api.sealed_call(
            "/api/v1/ra/cards",
            {
                "token": state.token,
                "user_id": mine,
                "issuance_passcode": "issue-me-123",
                "key_algorithm": "ecp256",
            },
        )
        assert issued["status"] == "issued"
        shown = api.get(f"/api/v1/ra/cards/{issued['serial']}", token=state.token)
        assert shown["holder"]["user_id"] == mine
        with pytest.raises(ServiceError, match="no card") as info:
            api.get(f"/api/v1/ra/cards/{theirs.serial}", token=state.token)
        assert info.value.status == 404
        with pytest.raises(ServiceError) as info:
            api.post(f"/api/v1/ra/cards/{theirs.serial}/revoke", {"reason": "x"}, token=state.token)
        assert info.value.status == 404
        api.post(
            f"/api/v1/ra/cards/{issued['serial']}/revoke", {"reason": "test"}, token=state.token
        )


def test_holder_without_ra_role_cannot_sign_in_as_ra(
    rt: Runtime, operator: Actor, live_url: str
) -> None:
    a.open_org(rt, operator)
    h = a.holder(rt, operator)
    with (
        httpx.Client(base_url=live_url, timeout=30) as http,
        pytest.raises(ServiceError, match="Passcode or identifier not recognised"),
    ):
        _ra_login(http, h)


def test_the_api_issues_only_an_approved_card_when_the_organisation_asks_for_approval(
    rt: Runtime, operator: Actor, live_url: str
) -> None:
    a.open_org(rt, operator, "ORGA")
    directory.update_policy(rt, operator, "ORGA", {"cards_need_sponsor_approval": True})
    ra = a.holder(rt, operator, "ORGA")
    directory.grant_role(rt, operator, user_id=ra.card.user_id, org_code="ORGA", role="ra_agent")
    newcomer = f.person(rt, operator, "ORGA")
    body = {"user_id": newcomer, "issuance_passcode": "issue-me-123", "key_algorithm": None}
    with httpx.Client(base_url=live_url, timeout=30) as http:
        api = CardvaultApi(http)
        state = _ra_login(http, ra)
        api.post("/api/v1/ra/role", {"organisation": "ORGA", "role": "ra_agent"}, token=state.token)
        with pytest.raises(ServiceError) as info:
            api.sealed_call("/api/v1/ra/cards", {"token": state.token, **body})
        assert info.value.status == 403
        assert "approval before a card is issued" in info.value.message
