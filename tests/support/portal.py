"""Helpers for portal tests: a dispatcher into memory or real SMTP, links out of emails."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cardvault.notify.outbox import MemoryOutbox
from cardvault.notify.smtp import SmtpSender
from cardvault.services.notifications.dispatcher import Dispatcher, Senders
from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import SignInFailed
from cardvault.services.system.runtime import Runtime
from tests.support import auth as a

WRONG = "definitely not my passcode"
_LINK = re.compile(r"https?://\S+/portal/(reset|invitation)/([A-Za-z0-9_-]{43})")


def memory_dispatcher(rt: Runtime, outbox: MemoryOutbox | None = None) -> Dispatcher:
    box = outbox or MemoryOutbox()
    return Dispatcher(rt, Senders(email=box, sms=box))


def smtp_dispatcher(rt: Runtime, port: int) -> Dispatcher:
    sender = SmtpSender(
        host="127.0.0.1", port=port, security="none", from_address="cardvault <cv@example.org>"
    )
    return Dispatcher(rt, Senders(email=sender, sms=MemoryOutbox()))


def token_in(text: str, kind: str = "reset") -> str:
    """The link token in an email's text (the link must be there exactly once per kind)."""
    found = [m.group(2) for m in _LINK.finditer(text) if m.group(1) == kind]
    assert found, f"no {kind} link in: {text!r}"
    assert len(set(found)) == 1
    return found[0]


def lock(engine: Engine, h: a.HolderFixture) -> None:
    """Three wrong passcodes through the authentication engine."""
    lock_by_email(engine, h.email)


def lock_by_email(engine: Engine, email: str) -> None:
    """Three wrong passcodes for the card of ``email`` (any second factor, or none)."""
    from cardvault.services.signin.engine import LoginRequest

    for _ in range(3):
        try:
            engine.login(
                a.client(),
                LoginRequest(identifier_kind="email", identifier=email, passcode=WRONG),
            )
        except SignInFailed:
            continue
        raise AssertionError("a wrong passcode was accepted")


def newest_reset_link(rt: Runtime, to: str | None = None) -> str:
    """Send what the outbox holds (into memory); the token of the newest email's reset link
    (of the newest email to ``to``: an RA may be alerted after the holder is emailed)."""
    box = MemoryOutbox()
    memory_dispatcher(rt, box).drain()
    return token_in([m for m in box.emails if to in (None, m.to)][-1].text)


@dataclass
class Clock:
    """A clock the test moves forward."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
