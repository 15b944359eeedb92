"""The JSON endpoints the FIDO2 registration page's script calls (same-origin, CSRF header).

They sit under ``/ra/api/`` so that errors come back as problem+json for the script, and
use the RA's web session like the pages do. The ceremony state is kept in that session.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from cardvault.errors import InvalidInput
from cardvault.services.ra import persons as ra_persons
from cardvault.services.ra import security_keys as ra_security_keys
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.web import ui
from cardvault.web.ra.context import Agent, Rt, View

router = APIRouter(prefix="/ra/api/persons", tags=["vRA Manager"], include_in_schema=False)
STATE_KEY = "webauthn_registration"


def _check(view: WebSessionView, token: str | None) -> None:
    ui.check_csrf(view, header=token)


@router.post("/{user_id}/fido2/begin")
def begin(
    rt: Rt,
    view: View,
    ctx: Agent,
    user_id: str,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    _check(view, x_csrf_token)
    options, state = ra_security_keys.begin(rt, ctx, user_id)
    web_sessions.update_data(rt, view, **{STATE_KEY: {**state, "user_id": user_id}})
    return options


@router.post("/{user_id}/fido2/complete")
async def complete(
    request: Request,
    rt: Rt,
    view: View,
    ctx: Agent,
    user_id: str,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    _check(view, x_csrf_token)
    await run_in_threadpool(ra_persons.require_person, rt, ctx, user_id)
    key = await ui.read_new_key(request)
    state = view.data.get(STATE_KEY)
    web_sessions.update_data(rt, view, **{STATE_KEY: None})  # a state answers once
    if not isinstance(state, dict) or state.get("user_id") != user_id:
        raise InvalidInput("Start the registration again.", field="nickname")
    assoc = await run_in_threadpool(
        ra_security_keys.complete,
        rt,
        ctx,
        user_id,
        state,
        key.credential,
        key.nickname,
    )
    ui.set_notice(rt, request, f"Security key '{assoc.label}' registered.")
    return {
        "id": assoc.id,
        "nickname": assoc.label,
        "aaguid": assoc.aaguid,
        "authenticator": assoc.authenticator,
        "next": f"/ra/persons/{user_id}",
    }
