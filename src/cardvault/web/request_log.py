"""One JSON log event per request, with its request id; JSON for every other log line too.

The request id comes from the client's (or the load balancer's) ``X-Request-ID`` when it is
a plain token, else a new one; it goes back in the answer's ``X-Request-ID``, into every
audit event the request writes (``client_address.actor_for``) and into every log line
written while the request runs, so that one id finds the request in the load balancer's
log, the service's log and the audit trail.

What is logged is chosen, never dumped: the method, the *route template* that matched
(``/portal/reset/{token}``, never the path itself: paths carry link tokens), the status,
the time taken and the client address. No query string, header or body is logged, so a
passcode, a link token or a session token cannot reach the log through this event
(tests/integration/web/test_request_log.py sends them and looks).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import Scope

from cardvault.services.system.metrics import metrics
from cardvault.services.system.runtime import Runtime
from cardvault.store.types import new_id
from cardvault.web.client_address import scope_client_address

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
#: a request id we pass on: a plain token, so it cannot forge log lines or headers
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._:-]{8,128}")
#: the request being answered, for every log line written meanwhile (worker threads too)
REQUEST_ID: ContextVar[str | None] = ContextVar("cardvault_request_id", default=None)
log = logging.getLogger("cardvault.request")
_UNMATCHED = "unmatched"


def request_id_from(scope: Scope) -> str:
    """The id of this request: set by the edge (``web/edge.py``); a new one if it did not
    run."""
    state = scope.get("state") or {}
    known = state.get("request_id")
    return known if isinstance(known, str) else new_id()


def given_id(scope: Scope) -> str | None:
    """The client's (or the load balancer's) ``X-Request-ID``, when it is a plain token."""
    for name, value in scope.get("headers") or []:
        if name == _HEADER_BYTES:
            text = value.decode("latin-1")
            return text if _ACCEPTED_ID.fullmatch(text) else None
    return None


def record(rt: Runtime, scope: Scope, status: int, seconds: float) -> None:
    """The request's log event and its metrics, once it is answered (or failed)."""
    route = getattr(scope.get("route"), "path", None) or _UNMATCHED
    area = _area(route)
    m = metrics(rt)
    m.http_requests.labels(area=area, status=str(status)).inc()
    m.http_seconds.labels(area=area).observe(seconds)
    if not log.isEnabledFor(logging.INFO):
        return
    log.info(
        "%s %s %d",
        scope.get("method"),
        route,
        status,
        extra={
            "event": {
                "event": "http.request",
                "method": scope.get("method"),
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": scope_client_address(scope, rt.settings.trusted_proxies),
            }
        },
    )


@functools.lru_cache(maxsize=512)
def _area(route: str) -> str:
    """A few values for the metrics' label: the API's resource, else the first segment."""
    if route == _UNMATCHED:
        return route
    parts = [p for p in route.split("/") if p and not p.startswith("{")]
    if parts[:2] == ["api", "v1"]:
        return "/".join(parts[:3])
    return parts[0] if parts else "home"


# -- JSON log lines ---------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id, the event."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,  # which worker process (CARDVAULT_WORKERS)
        }
        rid = REQUEST_ID.get()
        if rid is not None:
            line["request_id"] = rid
        event = getattr(record, "event", None)
        if isinstance(event, dict):
            line.update(event)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure(level: int = logging.INFO) -> None:
    """Every logger of the process (ours, uvicorn's) writes JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    # uvicorn's access line carries the raw path (link tokens): web/edge.py logs instead
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
