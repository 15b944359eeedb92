"""``cardvault notify``: an operator sends what is queued and sees what failed."""

from __future__ import annotations

from tests.support import factories as f
from tests.support import portal as p
from tests.support.cli import Cli

from cardvault.config import Settings
from cardvault.notify.outbox import FileOutbox, MemoryOutbox
from cardvault.notify.ports import DeliveryFailed
from cardvault.services.notifications import outbox as notifications
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Card


def _queue(rt: Runtime, card_id: str) -> None:
    with transaction(rt.db) as s:
        card = s.get(Card, card_id)
        assert card is not None
        notifications.passcode_changed(s, rt, card)


def test_dispatch_sends_to_the_configured_outbox_and_failed_lists_failures(
    rt: Runtime, settings: Settings, operator: Actor
) -> None:
    f.org(rt, operator)
    card = f.active_card(rt, operator, email="cli.holder@example.org")
    _queue(rt, card.card_id)
    box = MemoryOutbox(failures=[DeliveryFailed("mailbox unavailable", permanent=True)])
    p.memory_dispatcher(rt, box).drain()
    _queue(rt, card.card_id)
    cli = Cli(data_dir=settings.data_dir, database_url=settings.resolved_database_url)

    sent = cli.run("notify", "dispatch").ok().json
    assert sent == {"sent": 1, "retrying": 0, "failed": 0}
    (entry,) = FileOutbox(settings.outbox_dir).list_messages()
    assert entry.to == "cli.holder@example.org"
    assert cli.run("notify", "dispatch").ok().json["sent"] == 0

    (failed,) = cli.run("notify", "failed", "ORG1").ok().json
    assert failed["last_error"] == "mailbox unavailable"
    assert failed["template"] == "passcode_changed"
    assert "mailbox unavailable" in cli.run("notify", "failed", "org1", json_output=False).stdout
    assert cli.run("notify", "failed", "NOPE").returncode == 3
