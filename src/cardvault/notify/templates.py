"""The emails and text messages cardvault sends, rendered from Jinja2 templates.

Each email has three files under ``templates/``: ``<name>.subject.txt``, ``<name>.txt`` and
``<name>.html`` (autoescaped); each SMS one ``<name>.sms.txt``. Every template declares the
context it takes, and a call with a missing *or an unexpected* key is refused: the only
secret a message may carry is its own link or code, so a caller cannot slip a passcode
or a session token into one by passing it along. Links must be http(s), so an ``href``
can never run script. The HTML has no external images or fonts (no tracking, nothing to
fetch).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeAlias

import jinja2

from cardvault.errors import InvalidInput, error
from cardvault.json_types import JsonInput
from cardvault.notify.message import EmailMessage, SmsMessage

#: what a template may show: JSON values, and moments (the templates format them)
TemplateValue: TypeAlias = JsonInput | datetime
#: a template's context, by the keys the template declares
TemplateContext: TypeAlias = Mapping[str, TemplateValue]

DEFAULT_SERVICE_NAME = "cardvault"
_OPTIONAL = frozenset({"service_name"})
_LINK_KEYS = frozenset({"link", "ra_link"})
_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


class EmailTemplate(StrEnum):
    CARD_LOCKED = "card_locked"
    RESET_REQUESTED = "reset_requested"
    PASSCODE_CHANGED = "passcode_changed"
    INVITATION = "invitation"
    DEVICE_ADDED = "device_added"
    DEVICE_REMOVED = "device_removed"
    #: stored in the outbox under their first names
    SECURITY_KEY_ADDED = "fido2_key_added"
    SECURITY_KEY_REMOVED = "fido2_key_removed"
    NOT_ME_ALERT = "not_me_alert"
    SECOND_FACTOR_ALERT = "second_factor_alert"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    CARD_CHANGED = "card_changed"
    HOLDER_METHOD_REMOVED = "holder_method_removed"


class SmsTemplate(StrEnum):
    INVITATION_CODE = "invitation_code"


_HOLDER = frozenset({"holder_name", "support_contact"})
_LINK = frozenset({"link", "valid_minutes"})
_RA_ALERT = frozenset({"holder_name", "organisation_name", "at", "ra_link"})
#: the context each template takes; ``service_name`` is optional everywhere
CONTEXT_KEYS: Mapping[str, frozenset[str]] = {
    EmailTemplate.CARD_LOCKED: _HOLDER | _LINK | {"at", "cause"},
    EmailTemplate.RESET_REQUESTED: _HOLDER | _LINK,
    EmailTemplate.PASSCODE_CHANGED: _HOLDER | {"at"},
    EmailTemplate.INVITATION: _HOLDER | _LINK | {"organisation_name"},
    EmailTemplate.DEVICE_ADDED: _HOLDER | {"at", "device_name"},
    EmailTemplate.DEVICE_REMOVED: _HOLDER | {"at", "device_name"},
    EmailTemplate.SECURITY_KEY_ADDED: _HOLDER | {"at", "key_name"},
    EmailTemplate.SECURITY_KEY_REMOVED: _HOLDER | {"at", "key_name"},
    EmailTemplate.NOT_ME_ALERT: _RA_ALERT | {"device_name"},
    EmailTemplate.SECOND_FACTOR_ALERT: _RA_ALERT | {"door"},
    EmailTemplate.CERTIFICATE_EXPIRING: _HOLDER | {"card_serial", "expires_at"},
    EmailTemplate.CARD_CHANGED: _HOLDER | {"at", "change"},
    EmailTemplate.HOLDER_METHOD_REMOVED: _RA_ALERT | {"method_name"},
    SmsTemplate.INVITATION_CODE: frozenset({"code", "valid_minutes"}),
}


#: what each message is, in words an RA reads (the vRA Manager's undelivered messages)
TITLES: Mapping[str, str] = {
    EmailTemplate.CARD_LOCKED: "Card locked, with a link to set a new passcode",
    EmailTemplate.RESET_REQUESTED: "Link to reset the passcode",
    EmailTemplate.PASSCODE_CHANGED: "Passcode changed",
    EmailTemplate.INVITATION: "Invitation to finish enrolment (link)",
    EmailTemplate.DEVICE_ADDED: "Device added",
    EmailTemplate.DEVICE_REMOVED: "Device removed",
    EmailTemplate.SECURITY_KEY_ADDED: "Security key added",
    EmailTemplate.SECURITY_KEY_REMOVED: "Security key removed",
    EmailTemplate.NOT_ME_ALERT: "Alert to the RA: a sign-in the holder did not make",
    EmailTemplate.SECOND_FACTOR_ALERT: "Alert to the RA: five wrong second factors in a row",
    EmailTemplate.CERTIFICATE_EXPIRING: "Card certificates expire soon: renew",
    EmailTemplate.CARD_CHANGED: "Card changed by its holder (security questions, recovery code)",
    EmailTemplate.HOLDER_METHOD_REMOVED: "Alert to the RA: the holder removed a way to sign in",
    SmsTemplate.INVITATION_CODE: "Enrolment code for an invitation",
}


def title(template: str) -> str:
    """The template's title; a name no longer known is shown as it was stored."""
    return TITLES.get(template, template.replace("_", " "))


class UnknownTemplate(InvalidInput):
    code = "unknown_template"


@error
class TemplateContextError(InvalidInput):
    """The context does not fit the template: a key is missing, unexpected or malformed."""

    code = "template_context"
    key: str | None = None
    missing: list[str] | None = None
    unexpected: list[str] | None = None


def render_email(
    template: str, *, to: str, message_id: str, context: TemplateContext
) -> EmailMessage:
    """Render the email ``template`` (an :class:`EmailTemplate` value) for ``to``."""
    name = _template_name(template, EmailTemplate)
    values = _checked_context(name, context)
    text_env, html_env = _environments()
    subject = _render(text_env, f"{name}.subject.txt", values).strip()
    return EmailMessage(
        message_id=message_id,
        to=to,
        subject=subject,
        text=_render(text_env, f"{name}.txt", values).strip() + "\n",
        html=_render(html_env, f"{name}.html", {**values, "subject": subject}),
    )


def render_sms(template: str, *, to: str, message_id: str, context: TemplateContext) -> SmsMessage:
    """Render the SMS ``template`` (an :class:`SmsTemplate` value) for ``to``."""
    name = _template_name(template, SmsTemplate)
    values = _checked_context(name, context)
    text = _render(_environments()[0], f"{name}.sms.txt", values).strip()
    return SmsMessage(message_id=message_id, to=to, text=text)


def _template_name(template: str, kind: type[StrEnum]) -> str:
    try:
        return str(kind(template))
    except ValueError:
        raise UnknownTemplate(f"There is no message template called {template!r}.") from None


def _checked_context(name: str, context: TemplateContext) -> dict[str, TemplateValue]:
    expected = CONTEXT_KEYS[name]
    missing = sorted(expected - context.keys())
    unexpected = sorted(context.keys() - expected - _OPTIONAL)
    if missing or unexpected:
        raise TemplateContextError(
            f"The {name} template takes {', '.join(sorted(expected))}.",
            missing=missing,
            unexpected=unexpected,
        )
    for key in _LINK_KEYS & context.keys():
        _check_link(key, context[key])
    return {"service_name": DEFAULT_SERVICE_NAME, **context}


def _check_link(key: str, value: object) -> None:
    if (
        not isinstance(value, str)
        or not value.startswith(("https://", "http://"))
        or any(ch.isspace() for ch in value)
    ):
        raise TemplateContextError(f"The {key} must be an http(s) address.", key=key)


def _render(env: jinja2.Environment, file: str, values: TemplateContext) -> str:
    try:
        return env.get_template(file).render(values)
    except jinja2.UndefinedError as exc:  # a template uses a key it did not declare
        raise TemplateContextError(f"{file}: {exc.message}") from exc


@functools.cache
def _environments() -> tuple[jinja2.Environment, jinja2.Environment]:
    """(text, html) environments, built on first use rather than at import."""
    loader = jinja2.PackageLoader("cardvault.notify", "templates")
    strict = jinja2.StrictUndefined
    # plain text and subjects are not HTML: escaping would show "&amp;" to the reader
    text = jinja2.Environment(
        loader=loader,
        undefined=strict,
        autoescape=False,  # noqa: S701
        keep_trailing_newline=True,
    )
    html = jinja2.Environment(loader=loader, undefined=strict, autoescape=True)
    for env in (text, html):
        env.filters["when"] = format_when
        env.filters["duration"] = format_duration
    return text, html


def format_when(moment: datetime) -> str:
    """``31 January 2024 at 14:05 UTC``: unambiguous in every country, no locale needed."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise TemplateContextError("Times in messages must be timezone-aware datetimes.")
    utc = moment.astimezone(UTC)
    return f"{utc.day} {_MONTHS[utc.month - 1]} {utc.year} at {utc:%H:%M} UTC"


def format_duration(minutes: int) -> str:
    """``30 minutes``, ``1 hour 30 minutes``, ``7 days``: how long a link or code lives."""
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1:
        raise TemplateContextError("A validity must be a positive whole number of minutes.")
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour"), (mins, "minute")]
    return " ".join(f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n)
