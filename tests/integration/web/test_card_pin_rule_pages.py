"""Every page that asks for a card PIN states the organisation's real rule (issue 19 review):
the vRA Manager's enrolment and the invitation's last step say "8 digits" where the
organisation's shortest card PIN is 8, never PIV's "6 to 8". (My card's PIN page and the
agent's prompts: ``test_portal_card_pin.py``, ``piv/test_agent_cli.py``.)"""

from __future__ import annotations

import re

from tests.support import auth as a
from tests.support import factories as f
from tests.support import portal as p
from tests.support import ra_web as w

from cardvault.notify.outbox import MemoryOutbox
from cardvault.services.directory import registry as directory
from cardvault.services.ra import cards as ra_cards
from cardvault.services.ra.actions import RaContext
from cardvault.services.system.runtime import Actor, Runtime


def test_the_ra_enrolment_page_states_the_organisations_rule(rt: Runtime, operator: Actor) -> None:
    a.open_org(rt, operator, "ORGA")
    directory.update_policy(rt, operator, "ORGA", {"card_pin_min_length": 8})
    ra = w.ra_user(rt, operator, "ORGA")
    card = f.issued_card(rt, operator, "ORGA")
    c = w.client(rt)
    w.sign_in(c, ra)
    page = c.get(f"/ra/persons/{card.user_id}/enrol")
    assert page.status_code == 200, page.text[:500]
    assert "8 digits that programs such as Firefox" in page.text
    assert "6 to 8" not in page.text


def test_the_invitations_last_step_states_the_organisations_rule(
    rt: Runtime, operator: Actor
) -> None:
    f.org(rt, operator, networks=a.LOOPBACK, policy={"card_pin_min_length": 7})
    card = f.issued_card(rt, operator)
    with rt.db() as s:
        org_id = directory.get_org(s, "ORG1").id
    ctx = RaContext(
        actor=operator, organisation_id=org_id, organisation_code="ORG1", role="ra_agent"
    )
    ra_cards.invite(rt, ctx, card.user_id, issuance_passcode=f.ISSUANCE_PASSCODE,
                    email="invitee@example.org", phone="+447700900123")  # fmt: skip
    box = MemoryOutbox()
    p.memory_dispatcher(rt, box).drain()
    token = p.token_in(box.emails[0].text, "invitation")
    code = re.search(r"\b\d{6}\b", box.sms[0].text).group(0)  # type: ignore[union-attr]
    c = w.client(rt)
    url = f"/portal/invitation/{token}"
    assert w.post(c, url, code=code).status_code == 303
    page = c.get(f"{url}/setup")
    assert page.status_code == 200, page.text[:500]
    assert "asks for a card PIN of 7 or 8 digits." in page.text
    assert "6 to 8" not in page.text
