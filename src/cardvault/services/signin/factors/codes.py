"""One-time codes (RFC 6238) as both code-based factors use them: the authenticator app
added as a TOTP method, and the paired phone's own code. Each takes a time step once, in its
own store; matching a code and the refusals are the same for both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from cardvault.domain import totp
from cardvault.errors import CardvaultError
from cardvault.services.signin.errors import FactorFailed
from cardvault.services.signin.factors.base import FactorContext

H = TypeVar("H")

#: the refusal of a code that matches no time step (any other refusal says more)
WRONG = "totp_wrong"
#: the factors a one-time code may belong to: the paired phone's own code, an authenticator
#: app. Whoever types a code cannot tell which, so a code is tried against both.
METHODS = ("authenticator", "totp")
#: the answer ``{"method": "code", "code": …}``: a one-time code for whichever of METHODS it
#: belongs to (one code is one try)
ANY_CODE = "code"


def params_for(ctx: FactorContext) -> totp.TotpParams:
    """The time-step window the organisation allows."""
    return totp.TotpParams(window=ctx.organisation.policy.totp_window)


def matching_step(
    ctx: FactorContext, secret: bytearray, code: str, params: totp.TotpParams
) -> int | None:
    """The step ``code`` matches under ``secret`` (wiped afterwards), or None."""
    try:
        return totp.matching_step(secret.decode(), code, now=ctx.now.timestamp(), params=params)
    except totp.TotpWrong:
        return None
    except CardvaultError as exc:
        raise FactorFailed(exc.message, reason="TOTP code malformed", counts=False) from exc
    finally:
        secret[:] = bytes(len(secret))


def accept_once(
    ctx: FactorContext,
    holders: Sequence[H],
    code: str,
    secret_of: Callable[[H], bytearray | None],
    take_step: Callable[[H, int], bool],
) -> H:
    """The first of ``holders`` (apps, phones) whose secret ``code`` matches at a time step
    that ``take_step`` takes now (once, atomically); otherwise the refusal: a code that
    matched only steps already taken is a replay."""
    params = params_for(ctx)
    replayed = False
    for holder in holders:
        secret = secret_of(holder)
        step = None if secret is None else matching_step(ctx, secret, code, params)
        if step is None:
            continue
        if take_step(holder, step):
            return holder
        replayed = True
    raise refusal(replayed=replayed)


def refusal(*, replayed: bool) -> FactorFailed:
    """A code that matched only steps already taken is a replay; otherwise it is wrong."""
    if replayed:
        return FactorFailed(
            "This code has already been used. Wait for the next code.",
            reason="TOTP code replayed",
            code="totp_replayed",
            counts=False,  # the code was right once; replaying it guesses nothing
        )
    return FactorFailed(
        "The code is not right. Check the time on your phone and try the newest code.",
        reason="TOTP code wrong",
        code=WRONG,
    )


def telling(failures: Sequence[FactorFailed]) -> FactorFailed:
    """Of several refusals of one response, the one that says most ("already used",
    "denied") rather than a plain "not right" from a factor it was not meant for."""
    specific = [f for f in failures if f.code != WRONG]
    return (specific or list(failures))[0]
