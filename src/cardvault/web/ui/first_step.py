"""The first step of a web sign-in (the vRA Manager's, the portal's "My card"): one field
for an email address or a Windows account, and the passcode.

One function for both areas, so their error mapping cannot drift: a malformed identifier,
and an ``InvalidInput`` of the engine that names an identifier field, are shown next to the
identifier field; any other refusal next to the passcode (every refusal before the passcode
reads like a wrong passcode, DESIGN §3.3). After the right passcode the browser goes to the
organisation choice (``organisation_choice``) when several organisations would admit the
sign-in, else to the second factor (``second_factor``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from cardvault.domain import identifiers
from cardvault.errors import CardvaultError, InvalidInput
from cardvault.services.rate_limits import check as rate_limits
from cardvault.services.signin import web_sessions
from cardvault.services.signin.engine import LoginRequest
from cardvault.services.signin.web_sessions import WebSessionView
from cardvault.services.system.runtime import Runtime
from cardvault.web.client_address import actor_for
from cardvault.web.deps import engine_of
from cardvault.web.errors import status_of
from cardvault.web.rate_limit import Bucket
from cardvault.web.ui import organisation_choice
from cardvault.web.ui.forms import Form
from cardvault.web.ui.second_factor import Flow
from cardvault.web.ui.templating import redirect, render

#: where the identifier's checks put their errors: all on the one sign-in field
IDENTIFIER_ERRORS = {
    "identifier": "identifier",
    "email": "identifier",
    "domain": "identifier",
    "account": "identifier",
    "ad_account": "identifier",
}
#: the fields a re-displayed sign-in form never shows again
SECRETS = ("passcode",)


def _keep_nothing(rt: Runtime, view: WebSessionView, kind: str, ident: str) -> WebSessionView:
    return view


@dataclass(frozen=True, kw_only=True)
class FirstStep:
    """One area's sign-in page: who signs in for what, and where the second step is."""

    #: the second step this one leads to (its ``name``, ``path`` and session keys)
    flow: Flow
    #: the engine's purpose: ``ra`` or ``holder``
    purpose: str
    #: what the paired phone shows as the computer asking, when a push is sent
    client_name: str
    #: the page's template, shown again with the errors
    template: str
    #: what the area keeps of who typed what (the vRA Manager, for re-authentication)
    identified: Callable[[Runtime, WebSessionView, str, str], WebSessionView] = _keep_nothing


def read_identifier(form: Form) -> tuple[str, str]:
    """The one field takes an email address or a Windows account, told apart by their form."""
    try:
        return identifiers.sign_in_identifier(form.get("identifier"))
    except InvalidInput as exc:
        form.add_exception(exc, fields=IDENTIFIER_ERRORS, default="identifier")
        return "", ""


def sign_in(
    request: Request, rt: Runtime, view: WebSessionView, form: Form, step: FirstStep
) -> Response:
    """Identifier and passcode: the page again with precise errors, or the next step."""
    kind, ident = read_identifier(form)
    if not form.get("passcode"):
        form.add_error("passcode", "Enter your passcode.")
    if not form.ok:
        return _page(request, step, form, 422)
    rate_limits.check_identifier(rt, Bucket.SIGNIN, kind, ident)
    try:
        result = engine_of(request).login(
            actor_for(request, rt),
            LoginRequest(
                identifier_kind=kind,
                identifier=ident,
                passcode=form.get("passcode"),
                purpose=step.purpose,
                client_name=step.client_name,
            ),
        )
    except InvalidInput as exc:
        form.add_exception(exc, fields=IDENTIFIER_ERRORS, default="identifier")
        return _page(request, step, form, 422)
    except CardvaultError as exc:
        form.add_error("passcode", exc.message)
        return _page(request, step, form, status_of(exc))
    # the browser has no use for SK: it is dropped here, so the session's DEK wrap is
    # useless to anyone (the web pages never use the card's keys)
    if result.factor_error:
        form.add_error("passcode", result.factor_error.message)
        return _page(request, step, form, 401)
    view = step.identified(rt, view, kind, ident)
    if result.organisations:  # several organisations would admit this sign-in: which one
        return redirect(organisation_choice.ask(rt, step.flow, view, result))
    flow = step.flow.name
    web_sessions.update_data(
        rt,
        view,
        **{
            f"{flow}_txn": result.transaction_id,
            f"{flow}_factors": [o.method for o in result.second_factors],
            f"{flow}_push": None,
        },
    )
    return redirect(f"{step.flow.path}/code")


def _page(request: Request, step: FirstStep, form: Form, status: int) -> Response:
    return render(request, step.template, status=status, form=form.shown())
