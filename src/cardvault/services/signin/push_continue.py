"""Continuing a sign-in after a push to the paired phone (the web pages' "I have approved it").

Kept beside the engine rather than in it: the engine knows second factors only as plug-ins,
and this step is the authenticator plug-in's push asked for by name.
"""

from __future__ import annotations

import contextlib

from cardvault.domain.push_policy import PushStatus
from cardvault.errors import NotFound
from cardvault.services.devices import push
from cardvault.services.devices.errors import PushNotAnswered
from cardvault.services.signin.engine import Engine, SessionGrant
from cardvault.services.signin.factors import FactorAnswer
from cardvault.services.system.runtime import Actor


def complete_push(
    engine: Engine, actor: Actor, transaction_id: str, challenge_id: str
) -> SessionGrant:
    """An approved push opens the session. Asked before the phone has answered, nothing is
    tried (PushNotAnswered), so nothing counts as a failure."""
    with contextlib.suppress(NotFound):  # not this sign-in's: the plug-in refuses it
        if push.status(engine.rt, challenge_id[:36], transaction_id) is PushStatus.PENDING:
            raise PushNotAnswered()
    response = FactorAnswer(method="authenticator", challenge_id=challenge_id[:36])
    return engine.complete_factor(actor, transaction_id, response)
