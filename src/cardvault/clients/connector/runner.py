"""The connector: a card in pcscd's virtual reader for as long as its session lives.

It asks the service to insert a card (the holder's own, or a blank one for an RA to issue),
plugs it into vpcd with :class:`VpcdLink`, relays APDUs with :class:`ServiceRelay`, and takes
the card out again -- closes the vpcd connection, which pcscd reports as a removal -- as soon
as the session is over: logout on this PC (the agent's state file is gone), expiry (absolute,
or idle since the last APDU), or anything the service reports (logout elsewhere, lock,
revocation), which it asks about every ``poll_interval`` seconds without keeping the session
alive.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cardvault.clients.common.api import CardvaultApi, ServiceError
from cardvault.clients.common.replies import JsonObject, Reply
from cardvault.clients.connector.cache import LocalAnswers
from cardvault.clients.connector.relay import LinkCredentials, ServiceRelay
from cardvault.clients.connector.vpcd import DEFAULT_PORT, VpcdLink

__all__ = ["Connector", "Inserted", "insert_blank", "insert_for_holder"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(kw_only=True)
class Inserted:
    """A card the service put into this connector's reader."""

    mode: str  # "use" or "issuance"
    serial: str
    atr: bytes
    credentials: LinkCredentials
    expires_at: datetime
    idle_expires_at: datetime
    holder: str | None = None
    objects: dict[int, bytes | None] = field(default_factory=dict, repr=False)
    constant: dict[bytes, bytes] = field(default_factory=dict, repr=False)


def insert_for_holder(
    api: CardvaultApi, *, token: str, session_key: str, serial: str | None = None
) -> Inserted:
    """The signed-in holder's card; the service refuses any card the session may not use."""
    claims: JsonObject = {"token": token, "session_key": session_key}
    if serial:
        claims["serial"] = serial
    out = api.session_call("/api/v1/piv/links", claims)
    inserted = _inserted(out, "use", "/api/v1/piv/apdu", token, "session_key", session_key)
    inserted.objects = {
        int(tag, 16): None if v is None else bytes.fromhex(v)
        for tag, v in out.hex_map("objects").items()
    }
    inserted.constant = {
        bytes.fromhex(apdu): bytes.fromhex(v)
        for apdu, v in out.hex_map("constant").items()
        if v is not None
    }
    return inserted


def insert_blank(api: CardvaultApi, *, token: str, user_id: str, organisation: str) -> Inserted:
    """A blank card for ``user_id``, to be personalised by a card management system."""
    claims: JsonObject = {"token": token, "user_id": user_id, "organisation": organisation}
    out = api.session_call("/api/v1/piv/issuance", claims)
    issuance_key = out.text("issuance_key")
    inserted = _inserted(
        out, "issuance", "/api/v1/piv/issuance/apdu", token, "issuance_key", issuance_key
    )
    inserted.holder = out.text("holder")
    return inserted


def _inserted(out: Reply, mode: str, path: str, token: str, key_field: str, key: str) -> Inserted:
    """The card the service put in, and what each of its requests carries."""
    return Inserted(
        mode=mode,
        serial=out.text("serial"),
        atr=bytes.fromhex(out.text("atr")),
        credentials=LinkCredentials(
            path=path,
            token=token,
            key_field=key_field,
            key=key,
            link_id=out.text("link_id"),
            channel_key=out.optional_text("channel_key"),
        ),
        expires_at=_time(out.text("expires_at")),
        idle_expires_at=_time(out.text("idle_expires_at")),
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Connector:
    """Runs one inserted card until its session ends or :meth:`stop` is called."""

    def __init__(
        self,
        api: CardvaultApi,
        inserted: Inserted,
        *,
        vpcd_host: str = "127.0.0.1",
        vpcd_port: int = DEFAULT_PORT,
        still_signed_in: Callable[[], bool] = lambda: True,
        poll_interval: float = 15.0,
        on_answer: Callable[[Reply], None] | None = None,
        monitor: CardvaultApi | None = None,
        clock: Clock = _now,
    ) -> None:
        self.api = api
        #: a second client for the checks, so they never wait behind an APDU
        self.monitor = monitor or api
        self.inserted = inserted
        self._still_signed_in = still_signed_in
        self._poll_interval = poll_interval
        self._on_answer = on_answer
        self._clock = clock
        self._ended = threading.Event()
        self._reason = ""
        self._lock = threading.Lock()
        self.local = LocalAnswers(inserted.objects, inserted.constant)
        self.relay = ServiceRelay(
            api, inserted.credentials, local=self.local, on_answer=self._answered, on_end=self.stop
        )
        self.link = VpcdLink(
            relay=self.relay.relay,
            atr=inserted.atr,
            host=vpcd_host,
            port=vpcd_port,
            on_power=self.relay.power,
        )

    def run(self) -> str:
        """Insert the card and keep it in the reader; returns why it was taken out."""
        thread = threading.Thread(target=self._serve, name="vpcd", daemon=True)
        thread.start()
        next_poll = self._clock().timestamp() + self._poll_interval
        try:
            while not self._ended.wait(0.2):
                self._check_local()
                if self._clock().timestamp() >= next_poll:
                    next_poll = self._clock().timestamp() + self._poll_interval
                    self._check_service()
        finally:
            self.link.close()
            thread.join(timeout=5)
            self._remove()
        return self._reason

    def stop(self, reason: str) -> None:
        """Take the card out (safe from any thread and from a signal handler)."""
        with self._lock:
            if not self._ended.is_set():
                self._reason = reason
                self._ended.set()

    @property
    def inserted_event(self) -> threading.Event:
        """Set while vpcd holds the connection (the card is in the reader)."""
        return self.link.inserted

    def _serve(self) -> None:
        failures = 0

        def again(error: BaseException) -> float:
            nonlocal failures
            failures += 1
            level = logging.WARNING if failures == 1 else logging.DEBUG
            log.log(level, "the vpcd reader is not reachable (%s); trying again each second", error)
            return 1.0

        try:
            self.link.serve_forever(again)
        except Exception as error:  # pragma: no cover - serve_forever retries OSErrors itself
            self.stop(f"the virtual reader failed: {error}")

    def _answered(self, answer: Reply) -> None:
        with self._lock:
            self.inserted.idle_expires_at = _time(answer.text("idle_expires_at"))
            self.inserted.expires_at = _time(answer.text("expires_at"))
        if self._on_answer is not None:
            self._on_answer(answer)

    def _check_local(self) -> None:
        if not self._still_signed_in():
            self.stop("you signed out")
            return
        now = self._clock()
        with self._lock:
            ends = min(self.inserted.expires_at, self.inserted.idle_expires_at)
        if now >= ends:
            self.stop("the session expired")

    def _check_service(self) -> None:
        link_id = self.inserted.credentials.link_id
        try:
            status = self.monitor.get(
                f"/api/v1/piv/links/{link_id}", token=self.inserted.credentials.token
            )
        except ServiceError as error:
            if error.status is None:
                log.warning("cannot reach cardvault to check the session: %s", error.message)
                return
            status = Reply({"alive": False})
        if not status.flag("alive"):
            self.stop("the session ended" if self._still_signed_in() else "you signed out")
            return
        with self._lock:
            self.inserted.idle_expires_at = _time(status.text("idle_expires_at"))
            self.inserted.expires_at = _time(status.text("expires_at"))

    def _remove(self) -> None:
        creds = self.inserted.credentials
        try:
            self.monitor.delete(f"/api/v1/piv/links/{creds.link_id}", token=creds.token)
        except ServiceError as error:
            log.info("the service did not remove the link (%s); it ends with the session", error)
