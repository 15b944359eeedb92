"""The second step of a web sign-in (the vRA Manager's, the portal's "My card"), and of
confirming it is you before a sensitive action: the second factors the engine offered.

* a one-time code in one field, an authenticator app's or the paired phone's own
  (``Engine.complete_code`` tries the offered code factors; one code is one try);
* a push to the paired phone: "Send a request to my phone" starts it for this transaction,
  and the next page shows the two-digit number to type on the phone. The challenge is kept
  in this web session only, so no other browser can see the number. A static script waits
  for the answer and continues; without JavaScript, "I have approved it — continue";
* the security key (``static/ra/security-key-login.js``; the JSON endpoints below).

Each flow keeps its transaction in the web session (keys ``<name>_*``: the vRA Manager's
``/ra/login`` and ``/ra/reauth``, the portal's ``/portal/card/login``) and ends as its
area says: see ``Flow.done``. ``install`` adds a flow's routes to its area's router.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from cardvault.domain.push_policy import PushStatus
from cardvault.errors import CardvaultError, InvalidInput, NotFound
from cardvault.json_types import JsonObject
from cardvault.services.devices import errors as device_errors
from cardvault.services.devices import push
from cardvault.services.devices.channel import challenge_topic
from cardvault.services.devices.errors import NoPairedDevice, PushNotAnswered, PushRateLimited
from cardvault.services.signin import factor_store, web_sessions
from cardvault.services.signin import push_continue as push_signin
from cardvault.services.signin.errors import FactorFailed, SecondFactorLocked, TransactionInvalid
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web.api.device_auth import wait_for
from cardvault.web.client_address import actor_for
from cardvault.web.deps import engine_of, runtime
from cardvault.web.errors import status_of
from cardvault.web.rate_limit import Bucket, per_address
from cardvault.web.ui.forms import Form, read_credential
from cardvault.web.ui.session import check_csrf, checked_form, set_notice
from cardvault.web.ui.templating import redirect, render
from cardvault.web.wire_json import WireObject

Wait = Annotated[int, Query(ge=0, le=30, description="seconds to wait for the phone")]
#: what starting a push may refuse, shown on the page (the other ways still work)
PUSH_REFUSED = (NoPairedDevice, PushRateLimited, InvalidInput)
#: what ends the transaction: start again
ENDED = (TransactionInvalid, device_errors.TransactionInvalid)
#: a refused answer, shown on the page: another may follow (until the card locks)
REFUSED = (FactorFailed, SecondFactorLocked, InvalidInput)
#: the web-session keys of one flow (with its prefix)
KEYS = ("txn", "factors", "push", "next")
#: what a posted form of the flow runs (off the event loop)
FormStep = Callable[[Request, Runtime, "Flow", WebSessionView, Form], Response]


@dataclass(frozen=True, kw_only=True)
class Flow:
    """One sign-in step of an area: where its pages are, and what success does."""

    name: str
    title: str
    #: the area's path prefix (``/ra``, ``/portal/card``) and its page layout
    prefix: str
    layout: str
    #: after success: bind the web session, return where the browser goes next
    done: Callable[[Request, Runtime, WebSessionView, str], str]
    #: where to start again when the transaction is gone
    restart: Callable[[WebSessionView], str]
    #: a re-authentication: only for a browser already signed in
    signed_in_only: bool = False
    #: what to do when the card has no second factor this page can check
    no_factor_help: str = (
        "Ask another RA to add an authenticator app, pair a phone or register a security key "
        "for you."
    )

    @property
    def path(self) -> str:
        return f"{self.prefix}/{self.name}"

    @property
    def api(self) -> str:
        return f"{self.prefix}/api/{self.name}"

    def get(self, view: WebSessionView, key: str) -> Any:
        return view.data.get(f"{self.name}_{key}")

    def txn(self, view: WebSessionView) -> str | None:
        """The transaction waiting for its second factor in this browser, if any."""
        if self.signed_in_only and not view.signed_in:
            return None
        txn = self.get(view, "txn")
        return str(txn) if txn else None

    def forget(self, rt: Runtime, view: WebSessionView, *keys: str) -> WebSessionView:
        return web_sessions.update_data(rt, view, **{f"{self.name}_{k}": None for k in keys})


# --- pages ------------------------------------------------------------------------------


def _page(
    request: Request, flow: Flow, view: WebSessionView, form: Form, status: int = 200
) -> Response:
    return render(
        request,
        "ui/factor.html",
        status=status,
        flow=flow,
        factors=flow.get(view, "factors") or [],
        form=form.shown(),
        restart=flow.restart(view),
    )


def _ended(
    request: Request, rt: Runtime, flow: Flow, view: WebSessionView, exc: Exception
) -> Response:
    view = flow.forget(rt, view, "txn", "push")
    set_notice(rt, request, str(getattr(exc, "message", exc)))
    return redirect(flow.restart(view))


def _succeeded(request: Request, rt: Runtime, flow: Flow, view: WebSessionView) -> Response:
    txn = flow.txn(view)
    assert txn is not None
    return redirect(flow.done(request, rt, view, txn))


def code_page(request: Request, flow: Flow, view: WebSessionView) -> Response:
    if flow.txn(view) is None:
        return redirect(flow.restart(view))
    return _page(request, flow, view, Form())


def check_code(
    request: Request, rt: Runtime, flow: Flow, view: WebSessionView, form: Form
) -> Response:
    txn = flow.txn(view)
    if txn is None:
        return redirect(flow.restart(view))
    code = form.get("code").strip()
    if not code:
        form.add_error("code", "Enter the 6-digit code.")
        return _page(request, flow, view, form, 422)
    try:
        engine_of(request).complete_code(actor_for(request, rt), txn, code)
    except ENDED as exc:
        return _ended(request, rt, flow, view, exc)
    except REFUSED as exc:
        form.add_exception(exc, default="code")
        return _page(request, flow, view, form, status_of(exc))
    return _succeeded(request, rt, flow, view)


# --- push --------------------------------------------------------------------------------


def send_push(
    request: Request, rt: Runtime, flow: Flow, view: WebSessionView, form: Form
) -> Response:
    txn = flow.txn(view)
    if txn is None:
        return redirect(flow.restart(view))
    try:
        started = push.start(rt, actor_for(request, rt), txn)
    except ENDED as exc:
        return _ended(request, rt, flow, view, exc)
    except PUSH_REFUSED as exc:
        view = flow.forget(rt, view, "push")
        form.add_exception(exc, fields={"method": "push"}, default="push")
        return _page(request, flow, view, form, status_of(exc))
    web_sessions.update_data(rt, view, **{f"{flow.name}_push": started.challenge_id})
    return redirect(f"{flow.path}/push")


def push_page(
    request: Request,
    rt: Runtime,
    flow: Flow,
    view: WebSessionView,
    form: Form,
    error: CardvaultError | None = None,
) -> Response:
    txn, challenge_id = flow.txn(view), flow.get(view, "push")
    if txn is None or not challenge_id:
        return redirect(f"{flow.path}/code" if txn else flow.restart(view))
    try:
        prompt = push.prompt(rt, str(challenge_id), txn)
    except NotFound:
        flow.forget(rt, view, "push")
        return redirect(f"{flow.path}/code")
    return render(
        request,
        "ui/factor_push.html",
        status=status_of(error) if error else 200,
        flow=flow,
        prompt=prompt,
        form=form.shown(),
    )


def push_done(
    request: Request, rt: Runtime, flow: Flow, view: WebSessionView, form: Form
) -> Response:
    """ "I have approved it — continue" (or the page's script, once the phone answered)."""
    txn, challenge_id = flow.txn(view), flow.get(view, "push")
    if txn is None or not challenge_id:
        return redirect(f"{flow.path}/code" if txn else flow.restart(view))
    try:
        push_signin.complete_push(
            engine_of(request), actor_for(request, rt), txn, str(challenge_id)
        )
    except ENDED as exc:
        return _ended(request, rt, flow, view, exc)
    except PushNotAnswered as exc:
        form.add_exception(exc, default="continue")
        return push_page(request, rt, flow, view, form, exc)
    except REFUSED as exc:
        view = flow.forget(rt, view, "push")
        form.add_exception(exc, fields={"method": "push"}, default="push")
        return _page(request, flow, view, form, status_of(exc))
    return _succeeded(request, rt, flow, view)


async def push_state(
    request: Request, rt: Runtime, flow: Flow, view: WebSessionView, wait: int
) -> JSONResponse:
    """For the page's script: the push's status, as soon as the phone answers (or ``wait``)."""
    txn, challenge_id = flow.txn(view), flow.get(view, "push")
    if txn is None or not challenge_id:
        raise TransactionInvalid("This sign-in has no request waiting for your phone.")
    state = await wait_for(
        rt,
        challenge_topic(str(challenge_id)),
        lambda: push.status(rt, str(challenge_id), txn),
        lambda s: s is not PushStatus.PENDING,
        float(wait),
    )
    return JSONResponse({"status": state.value}, headers={"Cache-Control": "no-store"})


# --- the security key (JSON, for the page's script) ---------------------------------------


def key_options(rt: Runtime, flow: Flow, view: WebSessionView) -> JsonObject:
    """The options of the security-key challenge this transaction is waiting for."""
    txn = flow.txn(view)
    options = factor_store.pending_key_options(rt, txn) if txn else None
    if options is None:
        raise TransactionInvalid("This sign-in has expired or was already tried; start again.")
    return options


def key_answer(
    request: Request, rt: Runtime, flow: Flow, view: WebSessionView, credential: JsonObject
) -> dict[str, str]:
    """The key's answer: when it checks out, the flow is done."""
    txn = flow.txn(view)
    if txn is None:
        raise TransactionInvalid("This sign-in has expired; start again.")
    engine_of(request).complete_factor(
        actor_for(request, rt), txn, FactorAnswer(method="fido2", credential=credential)
    )
    return {"next": flow.done(request, rt, view, txn)}


# --- routes: the same steps for every flow -----------------------------------------------


def install(router: APIRouter, flow: Flow, session: Callable[[Request], WebSessionView]) -> None:
    """The flow's pages and JSON endpoints, on its area's router (prefix ``flow.prefix``)."""
    signin, poll = [per_address(Bucket.SIGNIN)], [per_address(Bucket.POLL)]
    # defaults, not Annotated aliases: the aliases would be local names, which FastAPI
    # cannot resolve from this module's (postponed) annotations
    view_of, rt_of = Depends(session), Depends(runtime)
    base = flow.prefix.removeprefix(router.prefix)

    def form_step(path: str, step: FormStep) -> None:
        """The posted forms differ only in what checks them."""

        @router.post(f"{base}/{flow.name}/{path}", dependencies=signin)
        async def post(
            request: Request, rt: Runtime = rt_of, view: WebSessionView = view_of
        ) -> Response:
            form = await checked_form(request, view, ("code",))
            return await run_in_threadpool(step, request, rt, flow, view, form)

    form_step("code", check_code)
    form_step("push", send_push)
    form_step("push/done", push_done)

    @router.get(f"{base}/{flow.name}/code")
    def get_code(request: Request, view: WebSessionView = view_of) -> Response:
        return code_page(request, flow, view)

    @router.get(f"{base}/{flow.name}/push")
    def get_push(request: Request, rt: Runtime = rt_of, view: WebSessionView = view_of) -> Response:
        return push_page(request, rt, flow, view, Form())

    @router.get(f"{base}/api/{flow.name}/push", dependencies=poll)
    async def get_push_state(
        request: Request, rt: Runtime = rt_of, view: WebSessionView = view_of, wait: Wait = 0
    ) -> JSONResponse:
        return await push_state(request, rt, flow, view, wait)

    @router.get(f"{base}/api/{flow.name}/fido2", dependencies=signin)
    def get_key_options(rt: Runtime = rt_of, view: WebSessionView = view_of) -> WireObject:
        return key_options(rt, flow, view)

    @router.post(f"{base}/api/{flow.name}/fido2", dependencies=signin)
    async def post_key_answer(
        request: Request,
        rt: Runtime = rt_of,
        view: WebSessionView = view_of,
        x_csrf_token: Annotated[str | None, Header()] = None,
    ) -> dict[str, str]:
        check_csrf(view, header=x_csrf_token)
        credential = await read_credential(request)
        return await run_in_threadpool(key_answer, request, rt, flow, view, credential)
