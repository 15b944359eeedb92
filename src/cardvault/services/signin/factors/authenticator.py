"""The paired authenticator app as a second factor: push with number matching, or its
one-time code when the phone is offline (DESIGN §3.2, §3.3).

``offer`` tells the PC whether the card has paired devices and how many are connected now;
the PC then asks for a push (``POST /api/v1/auth/push``), waits for the answer, and sends
``{"method": "authenticator", "challenge_id": …}``; or it sends the app's code as
``{"method": "authenticator", "code": "123456"}``. An approved challenge is turned into
``used`` by a conditional UPDATE, so it opens one session only; a code's time step is taken
the same way per device, so a code works once.
"""

from __future__ import annotations

from cardvault.domain import totp
from cardvault.domain.push_policy import PushStatus
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors import codes
from cardvault.services.signin.factors.base import (
    FactorAnswer,
    FactorContext,
    FactorOutcome,
    PushOffer,
)

_FAILED = {
    PushStatus.PENDING: ("The phone has not answered yet.", "push not answered", "push_pending"),
    PushStatus.DENIED: ("The sign-in was denied on the phone.", "push denied", "push_denied"),
    PushStatus.NOT_ME: (
        "The sign-in was refused on the phone and your RA has been told.",
        "push denied: this wasn't me",
        "push_not_me",
    ),
    PushStatus.WRONG_NUMBER: (
        "The number typed on the phone was not the one shown here; the sign-in was refused.",
        "push refused: wrong number",
        "push_wrong_number",
    ),
    PushStatus.EXPIRED: ("The request on the phone expired.", "push expired", "push_expired"),
    PushStatus.CANCELLED: ("That request was replaced or closed.", "push cancelled", "push_closed"),
    PushStatus.USED: ("That approval has already been used.", "push replayed", "push_replayed"),
}


class AuthenticatorFactor:
    """The paired phone: a push with number matching, or the phone's own one-time code."""

    method = "authenticator"

    def offer(self, ctx: FactorContext) -> PushOffer | None:
        """A push or code while the card has a paired phone in this organisation."""
        devices = ctx.store.paired_devices()
        if not devices:
            return None
        online = ctx.store.connected([d.id for d in devices])
        return PushOffer(
            method=self.method,
            devices=len(devices),
            connected=len(online),
            totp=any(d.has_totp for d in devices),
            digits=totp.DIGITS,
        )

    def verify(self, ctx: FactorContext, answer: FactorAnswer) -> FactorOutcome:
        """Check the phone's code or the approved push; raises FactorFailed."""
        if answer.code is not None:
            return self._code(ctx, answer.code)
        if answer.challenge_id is not None:
            return self._push(ctx, answer.challenge_id)
        raise FactorFailed(
            "Approve the request on your phone, or enter the code from the app.",
            reason="authenticator response missing",
            counts=False,
        )

    # -- push --------------------------------------------------------------------------------

    def _push(self, ctx: FactorContext, challenge_id: str) -> FactorOutcome:
        used = ctx.store.take_approved_push(challenge_id)
        if used is not None:
            return FactorOutcome(
                label="push", details={"method": "push", "challenge": challenge_id, "device": used}
            )
        seen = ctx.store.push_seen(challenge_id)
        state = PushStatus.EXPIRED
        if seen is not None:
            state = seen.status
            if state in (PushStatus.PENDING, PushStatus.APPROVED) and ctx.now >= seen.expires_at:
                state = PushStatus.EXPIRED
        message, reason, code = _FAILED.get(state, _FAILED[PushStatus.EXPIRED])
        # nothing is checked here: a wrong number counted when the phone answered
        raise FactorFailed(message, reason=reason, code=code, counts=False)

    # -- one-time code -----------------------------------------------------------------------

    def _code(self, ctx: FactorContext, code: str) -> FactorOutcome:
        device = codes.accept_once(
            ctx,
            ctx.store.paired_devices(),
            code,
            lambda d: ctx.store.open_device_totp(d.id) if d.has_totp else None,
            lambda d, step: ctx.store.take_device_step(d.id, step),
        )
        ctx.store.code_accepted_on(device.id)
        return FactorOutcome(
            label=device.name, details={"method": "device_totp", "device": device.id}
        )
