"""The second-factor plug-ins against a fake store: what a plug-in decides is a pure function
of its narrow context (no database, no rows), and each "take" it asks for happens once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from cardvault.domain.org_policy import OrganisationPolicy
from cardvault.domain.push_policy import PushStatus
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import (
    CodeOffer,
    FactorAnswer,
    FactorContext,
    HrCardOffer,
    PushOffer,
)
from cardvault.services.signin.factors.authenticator import AuthenticatorFactor
from cardvault.services.signin.factors.base import (
    BoundMethod,
    FactorOrganisation,
    PairedDevice,
    PushSeen,
)
from cardvault.services.signin.factors.hr_card import HrCardFactor
from cardvault.services.signin.factors.totp import TotpFactor

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SECRET = pyotp.random_base32()


@dataclass
class FakeStore:
    """The operations the plug-ins here use, in memory; ``taken`` records each take."""

    apps: list[BoundMethod] = field(default_factory=list)
    hr: list[BoundMethod] = field(default_factory=list)
    devices: list[PairedDevice] = field(default_factory=list)
    pushes: dict[str, tuple[PushStatus, datetime, str]] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)
    used: list[str] = field(default_factory=list)

    def authenticator_apps(self) -> list[BoundMethod]:
        return self.apps

    def open_app_secret(self, app_id: str) -> bytearray:
        return bytearray(SECRET.encode())

    def take_app_step(self, app_id: str, step: int) -> bool:
        if self.steps.get(app_id, -1) >= step:
            return False
        self.steps[app_id] = step
        return True

    def hr_cards(self) -> list[BoundMethod]:
        return self.hr

    def hr_card_used(self, hr_card_id: str) -> None:
        self.used.append(hr_card_id)

    def paired_devices(self) -> list[PairedDevice]:
        return self.devices

    def connected(self, device_ids: list[str]) -> set[str]:
        return set(device_ids[:1])

    def take_approved_push(self, challenge_id: str) -> str | None:
        status, expires_at, device = self.pushes.get(challenge_id, (None, NOW, ""))
        if status is not PushStatus.APPROVED or expires_at <= NOW:
            return None
        self.pushes[challenge_id] = (PushStatus.USED, expires_at, device)
        return device

    def push_seen(self, challenge_id: str) -> PushSeen | None:
        if challenge_id not in self.pushes:
            return None
        status, expires_at, _device = self.pushes[challenge_id]
        return PushSeen(status=status, expires_at=expires_at)


def context(store: FakeStore, *, route: str = "email") -> FactorContext:
    org = FactorOrganisation(id="org-1", code="RX1", policy=OrganisationPolicy())
    return FactorContext(
        card_id="card-1",
        organisation=org,
        transaction_id="txn-1",
        route=route,
        now=NOW,
        store=store,  # type: ignore[arg-type]  # the operations these plug-ins use
    )


def test_totp_is_offered_while_the_card_has_an_app_and_takes_a_step_once() -> None:
    store = FakeStore(apps=[BoundMethod(id="app-1", label="phone", lookup_key="")])
    ctx = context(store)
    assert TotpFactor().offer(ctx) == CodeOffer(method="totp", digits=6)
    code = pyotp.TOTP(SECRET).at(NOW)
    outcome = TotpFactor().verify(ctx, FactorAnswer(method="totp", code=code))
    assert outcome.details == {"method": "totp", "association": "app-1"}
    with pytest.raises(FactorFailed) as replayed:
        TotpFactor().verify(ctx, FactorAnswer(method="totp", code=code))
    assert (replayed.value.code, replayed.value.counts) == ("totp_replayed", False)
    assert TotpFactor().offer(context(FakeStore())) is None


def test_the_hr_card_is_offered_only_after_a_sign_in_that_started_from_it() -> None:
    store = FakeStore(hr=[BoundMethod(id="hr-1", label="badge", lookup_key="04A1B2C3D4E5F6")])
    assert HrCardFactor().offer(context(store, route="email")) is None
    ctx = context(store, route="hr_card")
    assert HrCardFactor().offer(ctx) == HrCardOffer(method="hr_card")
    with pytest.raises(FactorFailed) as other:
        HrCardFactor().verify(ctx, FactorAnswer(method="hr_card", uid="04A1B2C3D4E5F7"))
    assert other.value.code == "hr_card_mismatch"
    assert store.used == []
    HrCardFactor().verify(ctx, FactorAnswer(method="hr_card", uid="04a1b2c3d4e5f6"))
    assert store.used == ["hr-1"]


def test_an_approved_push_opens_once_and_a_pending_one_is_refused_uncounted() -> None:
    later = NOW + timedelta(minutes=1)
    store = FakeStore(
        devices=[PairedDevice(id="dev-1", name="Pixel", has_totp=False)],
        pushes={
            "ok": (PushStatus.APPROVED, later, "dev-1"),
            "wait": (PushStatus.PENDING, later, "dev-1"),
        },
    )
    ctx = context(store)
    assert AuthenticatorFactor().offer(ctx) == PushOffer(
        method="authenticator", devices=1, connected=1, totp=False, digits=6
    )
    answer = FactorAnswer(method="authenticator", challenge_id="ok")
    assert AuthenticatorFactor().verify(ctx, answer).details["device"] == "dev-1"
    with pytest.raises(FactorFailed) as again:
        AuthenticatorFactor().verify(ctx, answer)
    assert again.value.code == "push_replayed"
    with pytest.raises(FactorFailed) as pending:
        AuthenticatorFactor().verify(ctx, FactorAnswer(method="authenticator", challenge_id="wait"))
    assert (pending.value.code, pending.value.counts) == ("push_pending", False)
