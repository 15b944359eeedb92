"""Rendering the emails and text messages of issue 7 from their templates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cardvault.notify.message import HeaderInjection
from cardvault.notify.templates import (
    CONTEXT_KEYS,
    TITLES,
    EmailTemplate,
    SmsTemplate,
    TemplateContextError,
    UnknownTemplate,
    format_duration,
    format_when,
    render_email,
    render_sms,
    title,
)

AT = datetime(2024, 1, 31, 14, 5, tzinfo=UTC)
LINK = "https://cardvault.example/portal/recover?t=Q2xpY2sgbWU&lang=en"
SAMPLE: dict[str, Any] = {
    "holder_name": "Ann Holder",
    "support_contact": "the RA team at ra@trust.example",
    "link": LINK,
    "ra_link": "https://cardvault.example/ra/persons/100000000042",
    "valid_minutes": 30,
    "at": AT,
    "organisation_name": "North Trust",
    "device_name": "Ann's phone",
    "key_name": "Blue key",
    "code": "482915",
    "cause": "passcode",
    "door": "signing in",
    "card_serial": "CV0123456789",
    "expires_at": AT,
    "change": "your security questions were changed",
    "method_name": "Ann's phone",
}


def _context(template: str, **overrides: Any) -> dict[str, Any]:
    return {key: SAMPLE[key] for key in CONTEXT_KEYS[template]} | overrides


def _render(template: str, **overrides: Any) -> Any:
    return render_email(
        template,
        to="ann@example.org",
        message_id=f"{template}-1",
        context=_context(template, **overrides),
    )


@pytest.mark.parametrize("template", list(EmailTemplate))
def test_every_email_has_subject_text_and_html_without_external_resources(
    template: EmailTemplate,
) -> None:
    message = _render(template)

    assert message.subject
    assert "\n" not in message.subject
    assert message.html is not None
    assert "Ann Holder" in message.text
    assert "Ann Holder" in message.html
    assert "<img" not in message.html
    assert not re.search(r"\bsrc\s*=", message.html)
    assert "{{" not in message.text + message.html  # nothing left unrendered
    assert "We will never ask you for your passcode" in message.text


@pytest.mark.parametrize("template", ["card_locked", "reset_requested", "invitation"])
def test_link_appears_in_both_parts_and_as_a_button(template: str) -> None:
    message = _render(template)

    assert LINK in message.text
    escaped = LINK.replace("&", "&amp;")
    assert message.html.count(f'href="{escaped}"') == 2  # the button and the pasteable address
    assert f">{escaped}</a>" in message.html


def test_not_me_alert_links_the_ra_to_the_card() -> None:
    message = _render("not_me_alert")

    assert SAMPLE["ra_link"] in message.text
    assert f'href="{SAMPLE["ra_link"]}"' in message.html
    assert "North Trust" in message.text


def test_card_locked_says_when_for_how_long_and_whom_to_contact() -> None:
    message = _render("card_locked", valid_minutes=45)

    assert "31 January 2024 at 14:05 UTC" in message.text
    assert "45 minutes" in message.text
    assert "someone may have tried to use your card" in message.text
    assert "the RA team at ra@trust.example" in message.text
    assert "three times in a row" in message.text


def test_a_second_factor_lock_says_so_and_that_the_passcode_may_be_known() -> None:
    message = _render("card_locked", cause="second_factor")

    for part in (message.text, message.html):
        assert "wrong second factor" in part
        assert "five times in a row" in part
        assert "someone else may know your passcode" in part
        assert "three times in a row" not in part
    assert LINK in message.text


def test_the_ra_alert_of_a_second_factor_lock_names_the_holder_and_where() -> None:
    message = _render("second_factor_alert", door="resetting the passcode")

    assert message.subject == "A card was locked after five wrong second factors"
    assert "Ann Holder" in message.text
    assert "North Trust" in message.text
    assert "while resetting the passcode" in message.text
    assert SAMPLE["ra_link"] in message.text


def test_html_escapes_names_but_text_keeps_them_verbatim() -> None:
    message = _render("card_locked", holder_name='<script>alert("x")</script> & Co')

    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in message.html
    assert '<script>alert("x")</script> & Co' in message.text


def test_service_name_is_optional_and_overridable() -> None:
    assert "cardvault" in _render("passcode_changed").subject
    message = _render("passcode_changed", service_name="NHS Virtual Smartcard")
    assert message.subject == "Your NHS Virtual Smartcard passcode was changed"


def test_unexpected_context_key_is_refused_so_secrets_cannot_ride_along() -> None:
    with pytest.raises(TemplateContextError) as refused:
        _render("passcode_changed", passcode="hunter2hunter2")

    assert refused.value.unexpected == ["passcode"]


def test_missing_context_key_is_refused() -> None:
    context = _context("card_locked")
    del context["link"]

    with pytest.raises(TemplateContextError) as refused:
        render_email("card_locked", to="ann@example.org", message_id="m", context=context)

    assert refused.value.missing == ["link"]


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html,hi", "https://x.example/a b", 42]
)
def test_link_that_is_not_an_http_address_is_refused(link: object) -> None:
    with pytest.raises(TemplateContextError):
        _render("reset_requested", link=link)


def test_unknown_template_is_refused() -> None:
    with pytest.raises(UnknownTemplate):
        render_email("welcome_aboard", to="ann@example.org", message_id="m", context={})
    with pytest.raises(UnknownTemplate):
        render_sms("card_locked", to="07700900123", message_id="m", context={})


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(TemplateContextError):
        _render("device_added", at=datetime(2024, 1, 31, 14, 5))


def test_times_are_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_when(datetime(2024, 1, 31, 15, 5, tzinfo=paris)) == "31 January 2024 at 14:05 UTC"


@pytest.mark.parametrize(
    ("minutes", "words"),
    [
        (1, "1 minute"),
        (30, "30 minutes"),
        (60, "1 hour"),
        (90, "1 hour 30 minutes"),
        (24 * 60, "1 day"),
        (7 * 24 * 60, "7 days"),
    ],
)
def test_durations_read_as_words(minutes: int, words: str) -> None:
    assert format_duration(minutes) == words


@pytest.mark.parametrize("minutes", [0, -5, 2.5, True])
def test_duration_that_is_not_a_positive_whole_number_is_refused(minutes: Any) -> None:
    with pytest.raises(TemplateContextError):
        format_duration(minutes)


def test_invitation_code_sms_fits_one_segment_and_carries_the_code() -> None:
    sms = render_sms(
        SmsTemplate.INVITATION_CODE,
        to="07700 900123",
        message_id="invite-1-code",
        context={"code": "482915", "valid_minutes": 7 * 24 * 60},
    )

    assert sms.to == "+447700900123"
    assert sms.text.startswith("482915 is your cardvault enrolment code.")
    assert "7 days" in sms.text
    assert len(sms.text) <= 160


def test_invitation_email_says_a_code_comes_by_text_message() -> None:
    assert "text message" in _render("invitation").text


def test_rendered_message_repr_keeps_the_link_out_of_logs() -> None:
    message = _render("reset_requested")
    sms = render_sms(
        "invitation_code", to="+447700900123", message_id="s", context=_context("invitation_code")
    )

    assert LINK not in repr(message)
    assert "482915" not in repr(sms)


def test_recipient_with_line_break_cannot_reach_a_header() -> None:
    with pytest.raises(HeaderInjection):
        render_email(
            "passcode_changed",
            to="ann@example.org\r\nBcc: eve@example.org",
            message_id="m",
            context=_context("passcode_changed"),
        )


def test_every_template_has_a_title_for_the_ra() -> None:
    assert set(TITLES) == set(CONTEXT_KEYS)
    assert title(SmsTemplate.INVITATION_CODE) == "Enrolment code for an invitation"
    assert title("a_retired_template") == "a retired template"
