"""Development only: the file outbox in the browser, so a newcomer can click the link.

Mounted always, answering 404 unless the service runs in development mode with the file
outbox (``make run``). It shows what was "sent", exactly as an email client would receive it.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from cardvault.errors import NotFound
from cardvault.notify.message import EmailMessage
from cardvault.notify.outbox import FileOutbox
from cardvault.web import ui
from cardvault.web.portal.steps import Rt, View

router = APIRouter(prefix="/portal/dev/outbox", tags=["portal"], include_in_schema=False)
_URL = re.compile(r"https?://[^\s<>\"]+")


def _outbox(rt: Rt) -> FileOutbox:
    if not (rt.settings.development and rt.settings.mail_mode == "outbox"):
        raise NotFound("Page not found.")
    return FileOutbox(rt.settings.outbox_dir)


def linkify(text: str) -> Markup:
    """Plain text with its web addresses as links (everything else escaped)."""
    out, last = [], 0
    for match in _URL.finditer(text):
        out += [escape(text[last : match.start()]), _anchor(match.group(0))]
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


def _anchor(url: str) -> Markup:
    return Markup('<a class="link" href="{0}">{0}</a>').format(url)


@router.get("")
def listing(request: Request, rt: Rt, view: View) -> Response:
    messages = _outbox(rt).list_messages()
    return ui.render(request, "portal/outbox.html", messages=messages)


@router.get("/{message_id}")
def message(request: Request, rt: Rt, view: View, message_id: str) -> Response:
    found = _outbox(rt).read(message_id)
    is_email = isinstance(found, EmailMessage)
    return ui.render(
        request,
        "portal/outbox_message.html",
        message=found,
        subject=found.subject if isinstance(found, EmailMessage) else "Text message",
        body=linkify(found.text),
        is_email=is_email,
    )
