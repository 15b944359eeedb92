"""Step 2 of a reset: the holder's bound second factor (DESIGN §3.3).

The page offers what the card has: a push to the paired phone (with number matching), the
security key, a one-time code (the phone's own, or an authenticator app's). Every answer
goes to ``factor_answer.second_factor``, which checks it with the sign-in's plug-ins and counts
a wrong one like a wrong answer. Progressive enhancement: the push page works without
JavaScript ("I have approved it — continue"); with it, a static script waits for the phone
and continues by itself. The security key needs the browser's WebAuthn API, so a script.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cardvault.domain.push_policy import PushStatus
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.json_types import JsonObject
from cardvault.services.devices.channel import challenge_topic
from cardvault.services.devices.errors import (
    NoPairedDevice,
    PushNotAnswered,
    PushRateLimited,
    TransactionInvalid,
)
from cardvault.services.recovery import factor_answer
from cardvault.services.recovery import factors as recovery_factors
from cardvault.services.recovery import prompts as recovery_prompts
from cardvault.services.recovery import reset as recovery
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import FactorAnswer
from cardvault.web import ui
from cardvault.web.api.device_auth import wait_for
from cardvault.web.errors import status_of
from cardvault.web.portal.reset import ENDING, current, next_page
from cardvault.web.portal.steps import Rt, View, holder, in_step, link_problem, step_of
from cardvault.web.rate_limit import Bucket, per_address

router = APIRouter(prefix="/portal", tags=["portal"], include_in_schema=False)
PORTAL = [per_address(Bucket.PORTAL)]
Wait = Annotated[int, Query(ge=0, le=30, description="seconds to wait for the phone")]
#: what starting a push may refuse, shown on the factor page (the code still works)
PUSH_REFUSED = (NoPairedDevice, PushRateLimited, TransactionInvalid, InvalidInput)


def _restart(token: str) -> str:
    return f"/portal/reset/{token}"


# --- the page: the ways this card has ---------------------------------------------------------


@router.get("/reset/{token}/factor", dependencies=PORTAL)
def factor_page(request: Request, rt: Rt, view: View, token: str) -> Response:
    try:
        progress = current(request, rt, token, recovery.STEP_FACTOR)
    except ENDING as exc:
        return link_problem(request, exc, restart=_restart(token))
    return _factor(request, token, progress, ui.Form())


def _factor(
    request: Request, token: str, progress: recovery.Progress, form: ui.Form, status: int = 200
) -> Response:
    methods = list(progress.second_factors)
    return ui.render(
        request,
        "portal/reset_factor.html",
        status=status,
        methods=methods,
        form=form,
        token=token,
    )


def _factor_again(request: Request, rt: Rt, token: str, form: ui.Form, status: int) -> Response:
    """The factor page once more, with the form's error (or the link's problem)."""
    txn_id, key = step_of(request)
    try:
        progress = recovery.current_step(rt, token, txn_id, key)
    except ENDING as exc:
        return link_problem(request, exc, restart=_restart(token))
    return _factor(request, token, progress, form.shown(), status=status)


# --- a one-time code, or "continue" after the phone answered -----------------------------------


def _response(form: ui.Form) -> FactorAnswer:
    method = form.get("method") or recovery_factors.ONE_TIME_CODE
    if method == recovery_prompts.PHONE:
        return FactorAnswer(method=method, challenge_id=form.get("challenge_id"))
    return FactorAnswer(method=method, code=form.get("code"))


@router.post("/reset/{token}/factor", dependencies=PORTAL)
async def factor(request: Request, rt: Rt, view: View, token: str) -> Response:
    form = await ui.checked_form(request, view, secrets=("code",))
    return await run_in_threadpool(_check, request, rt, token, form)


def _check(request: Request, rt: Rt, token: str, form: ui.Form) -> Response:
    txn_id, key = step_of(request)
    response = _response(form)
    try:
        step = factor_answer.second_factor(rt, holder(request, rt), token, txn_id, key, response)
    except ENDING as exc:
        return link_problem(request, exc, restart=_restart(token))
    except PushNotAnswered as exc:
        form.add_exception(exc, default="continue")
        return _push_again(request, rt, token, str(response.challenge_id), form, exc)
    except (FactorFailed, InvalidInput) as exc:
        field = "push" if response.method == recovery_prompts.PHONE else "code"
        form.add_exception(exc, fields={"method": field}, default=field)
        return _factor_again(request, rt, token, form, status_of(exc))
    return ui.redirect(next_page(token, step.step))


# --- push: send, show the number, wait ------------------------------------------------------


@router.post("/reset/{token}/factor/push", dependencies=PORTAL)
async def send_push(request: Request, rt: Rt, view: View, token: str) -> Response:
    form = await ui.checked_form(request, view)
    return await run_in_threadpool(_send_push, request, rt, token, form)


def _send_push(request: Request, rt: Rt, token: str, form: ui.Form) -> Response:
    txn_id, key = step_of(request)
    try:
        started = recovery_prompts.start_push(rt, holder(request, rt), token, txn_id, key)
    except ENDING as exc:
        return link_problem(request, exc, restart=_restart(token))
    except PUSH_REFUSED as exc:
        form.add_exception(exc, fields={"method": "push"}, default="push")
        return _factor_again(request, rt, token, form, status_of(exc))
    return ui.redirect(f"/portal/reset/{token}/factor/push/{started.challenge_id}")


@router.get("/reset/{token}/factor/push/{challenge_id}", dependencies=PORTAL)
def push_page(request: Request, rt: Rt, view: View, token: str, challenge_id: str) -> Response:
    return _push_again(request, rt, token, challenge_id, ui.Form())


def _push_again(
    request: Request,
    rt: Rt,
    token: str,
    challenge_id: str,
    form: ui.Form,
    error: CardvaultError | None = None,
) -> Response:
    txn_id, key = step_of(request)
    try:
        current(request, rt, token, recovery.STEP_FACTOR)
        prompt = recovery_prompts.push_prompt(rt, token, txn_id, key, challenge_id)
    except ENDING as exc:
        return link_problem(request, exc, restart=_restart(token))
    return ui.render(
        request,
        "portal/reset_push.html",
        status=status_of(error) if error else 200,
        prompt=prompt,
        form=form,
        token=token,
    )


def _no_store(data: JsonObject) -> JSONResponse:
    return JSONResponse(data, headers={"Cache-Control": "no-store"})


@router.get("/api/reset/{token}/push/{challenge_id}", dependencies=[per_address(Bucket.POLL)])
async def push_state(
    request: Request, rt: Rt, token: str, challenge_id: str, wait: Wait = 0
) -> JSONResponse:
    """For the page's script: the push's status, as soon as the phone answers (or ``wait``)."""
    txn_id, key = step_of(request)
    state = await wait_for(
        rt,
        challenge_topic(challenge_id[:36]),
        lambda: recovery_prompts.push_status(rt, token, txn_id, key, challenge_id),
        lambda s: s is not PushStatus.PENDING,
        float(wait),
    )
    return _no_store({"status": state.value})


# --- the security key: the page's script runs the WebAuthn ceremony ---------------------------


@router.post("/api/reset/{token}/security-key/options", dependencies=PORTAL)
async def key_options(
    request: Request,
    rt: Rt,
    view: View,
    token: str,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """``navigator.credentials.get`` options with this reset's challenge."""
    ui.check_csrf(view, header=x_csrf_token)
    options = await in_step(request, rt, token, recovery_prompts.security_key_options)
    return _no_store(options)


@router.post("/api/reset/{token}/security-key", dependencies=PORTAL)
async def key_answer(
    request: Request,
    rt: Rt,
    view: View,
    token: str,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """The key's answer (``{credential: PublicKeyCredential.toJSON()}``); the next page."""
    ui.check_csrf(view, header=x_csrf_token)
    credential = await ui.read_credential(request)
    response = FactorAnswer(method=recovery_prompts.SECURITY_KEY, credential=credential)
    step = await in_step(request, rt, token, factor_answer.second_factor, response)
    return _no_store({"next": next_page(token, step.step)})
