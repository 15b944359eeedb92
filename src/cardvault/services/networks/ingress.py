"""The service-wide ingress allow-list (DESIGN §3.6, revised): which client networks may
reach the service at all, and the audit of those refused.

A request is admitted when its client address is inside some organisation's networks (the
union of them all) — or, for the self-service portal, inside the networks the operator
opens for it (``CARDVAULT_PORTAL_NETWORKS``). The web shell decides which paths are public,
which are the portal's, and answers the refusal; this module keeps the lists and the audit.

**Several instances.** The union lives in each instance's memory and is read again from the
database at most once per ``REFRESH`` (on the first request after it is due), so a change
made anywhere — another instance's vRA Manager, the operator's CLI, a restored database —
takes effect on every instance within about a second, with no message between instances
that could be lost. The instance that made a change forgets its copy at once. The outer
gate may therefore admit a removed network for up to a second; that request still meets
the per-organisation check, which reads the organisation's row on every use.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.networks import AllowList
from cardvault.domain.refusal_throttle import RefusalThrottle, Verdict, source_of
from cardvault.errors import Unavailable
from cardvault.json_types import JsonValue
from cardvault.services.audit import trail as audit
from cardvault.services.networks.errors import IngressUnavailable
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.store.db import reading, transaction
from cardvault.store.models import Organisation

log = logging.getLogger("cardvault.ingress")
REFRESH = timedelta(seconds=1)
_CACHE = "cardvault.ingress.networks"
_THROTTLE = "cardvault.ingress.throttle"


@dataclass(frozen=True)
class Admission:
    """The two lists a request is checked against."""

    organisations: AllowList
    portal: AllowList

    @classmethod
    def of(cls, organisation_networks: list[str], portal_networks: list[str]) -> Admission:
        """The allow-lists of the two doors from the organisations' and the portal's networks."""
        orgs = AllowList.of(organisation_networks)
        return cls(organisations=orgs, portal=orgs | AllowList.of(portal_networks))


class NetworkCache:
    """The union of every organisation's networks, at most ``REFRESH`` old."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._value: Admission | None = None
        self._loaded_at: datetime | None = None
        self._lock = threading.Lock()

    def fresh(self) -> Admission | None:
        """The admission lists if they are recent enough to use without the database."""
        loaded, value = self._loaded_at, self._value
        if loaded is None or value is None:
            return None
        now = self._rt.clock()
        return value if loaded <= now < loaded + REFRESH else None

    def load(self) -> Admission:
        """Read the lists again (blocking: call from a worker thread). While another thread
        reads them, the previous lists serve; if the database fails, they keep serving and
        the read is tried again after ``REFRESH``. With no lists at all, refuse to guess."""
        if not self._lock.acquire(blocking=False):
            if self._value is not None:
                return self._value
            self._lock.acquire()
        try:
            return self.fresh() or self._read()
        finally:
            self._lock.release()

    def forget(self) -> None:
        """Read the networks again on the next request (after a change in this process)."""
        self._loaded_at = None

    def _read(self) -> Admission:
        now = self._rt.clock()
        try:
            with reading(self._rt.db) as session:
                lists = session.scalars(select(Organisation.allowed_networks)).all()
        except SQLAlchemyError as exc:
            log.warning("the organisations' networks could not be read: %s", exc)
            if self._value is None:
                raise IngressUnavailable(
                    "The service cannot check where this request comes from just now.",
                    remedy="Try again in a moment.",
                ) from exc
            self._loaded_at = now
            return self._value
        networks = [n for nets in lists for n in (nets or [])]
        self._value = Admission.of(networks, self._rt.settings.portal_networks)
        self._loaded_at = now
        return self._value


def networks(rt: Runtime) -> NetworkCache:
    """This process's cache of the networks, made on first use."""
    return rt.memo(_CACHE, lambda: NetworkCache(rt))


def networks_changed(rt: Runtime) -> None:
    """This instance changed an organisation's networks: read them again on the next request
    (other instances do within ``REFRESH``)."""
    networks(rt).forget()


def throttle(rt: Runtime) -> RefusalThrottle:
    """Per instance: with N instances a source may write up to N events per window."""
    return rt.memo(_THROTTLE, RefusalThrottle)


def consider_refusal(rt: Runtime, address: str | None) -> Verdict:
    """Whether a refusal of this address is written to the audit chain now (cheap)."""
    return throttle(rt).admit(source_of(address), rt.clock())


def record_refusal(
    rt: Runtime, *, address: str | None, method: str, area: str, verdict: Verdict
) -> None:
    """Append the refusal to the service's own chain (no organisation is named: the caller
    is outside all of them). The refusal stands whether or not this write succeeds."""
    actor = Actor(ref="anonymous", display="refused client", client_address=address)
    details: dict[str, JsonValue] = {"client_address": address or "unknown", "method": method}
    details["area"] = area
    if verdict.suppressed:
        details["suppressed"] = verdict.suppressed
    if verdict.suppressed_elsewhere:
        details["suppressed_elsewhere"] = verdict.suppressed_elsewhere
    try:
        with transaction(rt.db) as session:
            audit.record(
                session,
                rt,
                actor,
                action=AuditAction.INGRESS_REFUSED,
                outcome="failure",
                reason="outside_networks",
                details=details,
            )
    except (SQLAlchemyError, Unavailable) as exc:
        log.warning("an ingress refusal could not be audited: %s", exc)
