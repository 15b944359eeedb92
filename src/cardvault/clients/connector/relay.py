"""The connector's relay: each APDU from pcscd goes to the service in a JWE envelope.

The envelope is the link's session channel (DESIGN §3.5, §3.8 revised): ``dir``/A256GCM under
the channel key the service gave with the link, ``kid`` = the link id, over the one kept-alive
connection of the client: no RSA, no ECDH and no TLS handshake per APDU.

Every request carries the session token, the key (SK of the holder's card session, or the
issuance key of an RA's blank card), the link id and a sequence number. A request that fails
on the way (connection refused or reset, timeout, the service busy) is sent again with the
*same* sequence number until ``retry_for`` seconds have passed: the service answers a repeated
number from what it stored, so nothing runs twice, and the session survives the outage. When
the service says the session or the link is gone, the relay calls ``on_end`` so that the
connector takes the card out of the reader.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cardvault.card.apdu import Sw
from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.clients.common.replies import JsonObject, Reply
from cardvault.clients.connector.cache import LocalAnswers
from cardvault.clients.connector.vpcd import Control
from cardvault.errors import CardvaultError

__all__ = ["LinkCredentials", "RelayFailed", "ServiceRelay", "SessionEnded"]

log = logging.getLogger(__name__)

#: the service's answers that mean "this card may not be used here any more"
_ENDED = {401, 403, 404, 410}
_OK = Sw.SUCCESS.wire()
_BUSY = {429, 502, 503, 504}


class SessionEnded(CardvaultError):
    code = "connector_session_ended"


class RelayFailed(CardvaultError):
    code = "connector_relay_failed"


@dataclass(frozen=True, kw_only=True)
class LinkCredentials:
    """What every request of one link carries."""

    path: str  # /api/v1/piv/apdu or /api/v1/piv/issuance/apdu
    token: str = field(repr=False)
    key_field: str  # session_key or issuance_key
    key: str = field(repr=False)  # base64
    link_id: str
    #: the link's channel key CK (base64), when the service gave one
    channel_key: str | None = field(default=None, repr=False)


class ServiceRelay:
    """``relay(apdu) -> response`` and ``power(control)`` for a :class:`VpcdLink`."""

    def __init__(
        self,
        api: CardvaultApi,
        credentials: LinkCredentials,
        *,
        local: LocalAnswers | None = None,
        on_answer: Callable[[Reply], None] | None = None,
        on_end: Callable[[str], None] | None = None,
        retry_for: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api = api
        self._creds = credentials
        if credentials.channel_key:
            api.use_channel(credentials.link_id, credentials.channel_key)
        self._local = local or LocalAnswers()
        self._on_answer = on_answer
        self._on_end = on_end
        self._retry_for = retry_for
        self._sleep = sleep
        self._lock = threading.Lock()
        self._power_up = True  # the link starts as after power-up
        self.seq = 0
        self.round_trips = 0

    def relay(self, apdu: bytes) -> bytes:
        with self._lock:
            held, chain = self._local.chain(apdu)
            if held:
                self._local.reset()  # a new command: nothing waits for GET RESPONSE now
                return _OK
            local = self._local.answer(apdu)
            if local is not None:
                return local
            self.seq += 1
            self._local.stand({})  # the command may change what the card has proved
            answer = self._send(self._claims(apdu, chain))
            self._power_up = False
            response = base64.b64decode(answer.text("response"), validate=True)
            if answer.flag("whole"):
                response = self._local.whole(apdu, response)
            self._local.stand(_standing(answer))
        if self._on_answer is not None:
            self._on_answer(answer)
        return response

    def power(self, control: Control) -> None:
        """Power-up and reset forget what was proved; the next request tells the service."""
        if control in (Control.POWER_ON, Control.RESET):
            with self._lock:
                self._power_up = True
                self._local.power_up()

    def _claims(self, apdu: bytes, chain: tuple[bytes, ...]) -> JsonObject:
        claims: JsonObject = {
            "token": self._creds.token,
            self._creds.key_field: self._creds.key,
            "link_id": self._creds.link_id,
            "seq": self.seq,
            "apdu": _b64(apdu),
            "power_up": self._power_up,
            "drain": self._local.expected_length(apdu) is not None,
        }
        if chain:
            claims["chain"] = [_b64(part) for part in chain]
        return claims

    def _send(self, claims: JsonObject) -> Reply:
        """One request, repeated (same sequence number) while the failure is transient."""
        deadline = time.monotonic() + self._retry_for
        delay = 0.1
        while True:
            try:
                self.round_trips += 1
                if self._creds.channel_key:  # the link's channel (set in __init__)
                    return self._api.session_call(self._creds.path, claims)
                return self._api.sealed_call(self._creds.path, claims)
            except ServiceError as error:
                status = error.status
                if status in _ENDED:
                    self._end(error.message)
                    raise SessionEnded(error.message) from error
                if status is not None and status not in _BUSY:
                    raise RelayFailed(f"The service refused the APDU: {error.message}") from error
                if time.monotonic() + delay > deadline:
                    raise RelayFailed(f"The service cannot be reached: {error.message}") from error
                log.warning("relay failed (%s); sending it again in %.1f s", error.message, delay)
                self._sleep(delay)
                delay = min(delay * 2, 2.0)

    def _end(self, reason: str) -> None:
        if self._on_end is not None:
            self._on_end(reason)


def _standing(answer: Reply) -> dict[bytes, bytes]:
    if not answer.has("standing"):
        return {}
    standing = answer.hex_map("standing")
    return {bytes.fromhex(apdu): bytes.fromhex(v) for apdu, v in standing.items() if v is not None}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
