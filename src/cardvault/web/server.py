"""Run the app under uvicorn with TLS: one process, or several worker processes on one port.

With ``CARDVAULT_WORKERS`` (``cardvault serve --workers N``) above 1, the parent checks
what one process would check (unsealed, schema current, TLS files), binds the port once and
starts N worker processes (uvicorn's supervisor: spawned, not forked, so no database
connection, HSM session or thread crosses a fork; a worker that dies is replaced). Each
worker builds its own runtime from the same settings. They share what instances behind a
load balancer share (DESIGN §4): the database, Redis and the data directory; which is why
more than one worker needs ``CARDVAULT_REDIS_URL`` (push events and rate-limit counters
must reach every worker) -- docs/operator/guide.md, "Worker processes".
"""

from __future__ import annotations

import logging
import os
from typing import Any

import uvicorn
from fastapi import FastAPI

from cardvault.config import Settings
from cardvault.errors import InvalidInput
from cardvault.services.system.bootstrap import tls_paths
from cardvault.services.system.runtime import open_runtime
from cardvault.services.transport import keys as transport_keys
from cardvault.web.app import create_app
from cardvault.web.portal.steps import redact_access_log
from cardvault.web.request_log import configure as json_logs

log = logging.getLogger("cardvault")


#: how long an idle client connection stays open (clients: clients/common/shell.py)
KEEP_ALIVE_SECONDS = 75
#: the factory each worker process imports (it rebuilds the settings from the environment)
WORKER_APP = "cardvault.web.server:worker_app"


def serve(settings: Settings, *, workers: int | None = None) -> None:
    """Serve until stopped, with ``workers`` processes (default: the setting)."""
    workers = workers or settings.workers
    if workers > 1 and not settings.redis_url:
        raise InvalidInput(
            f"{workers} worker processes need CARDVAULT_REDIS_URL: push events and "
            "rate-limit counters must reach every worker, and without Redis each keeps "
            "its own.",
            remedy="Set CARDVAULT_REDIS_URL, or run one worker (CARDVAULT_WORKERS=1).",
        )
    rt = open_runtime(settings)  # refuses a sealed service or a stale schema, before binding
    json_logs()  # from the first line on, stderr is JSON lines (docs/operator/monitoring.md)
    log.info(
        "cardvault serving on https://%s:%d (%d worker process%s)",
        settings.host,
        settings.port,
        workers,
        "" if workers == 1 else "es",
    )
    transport_keys.ensure_ecdh(rt)  # a service initialised before ECDH-ES gets its key
    if workers == 1:
        _run(_config(settings, create_app(rt)))
        return
    rt.close()  # the parent serves nothing: each worker connects on its own
    _worker_environment(settings, workers)
    config = _config(settings, WORKER_APP, factory=True, workers=workers)
    from uvicorn.supervisors import Multiprocess

    redact_access_log()
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def worker_app() -> FastAPI:
    """One worker process's app (uvicorn calls this in the worker, after its logging set-up)."""
    json_logs()
    redact_access_log()
    return create_app(open_runtime(Settings()))


def _worker_environment(settings: Settings, workers: int) -> None:
    """What the workers' ``Settings()`` must read as the parent did: the data directory
    (``--data-dir`` is not in the environment), and the KDF slots shared out between them
    so that N workers together run about one derivation per core, not N per core."""
    os.environ["CARDVAULT_DATA_DIR"] = str(settings.data_dir.resolve())
    if settings.kdf_concurrency is None:
        cores = os.cpu_count() or 1
        os.environ["CARDVAULT_KDF_CONCURRENCY"] = str(max(1, cores // workers))


def _config(settings: Settings, app: Any, **more: Any) -> uvicorn.Config:
    cert, key = tls_paths(settings)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        log_level="info",
        log_config=None,  # our JSON lines (web/request_log.py), not uvicorn's text
        access_log=False,  # the edge (web/edge.py) logs one event per request, without paths
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        # a connector relays every APDU on one kept-alive connection (DESIGN §3.8): keep it
        # across the pauses between two uses of the card, longer than clients keep it
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **more,
    )


def _run(config: uvicorn.Config) -> None:
    redact_access_log()  # after uvicorn configured its loggers: link tokens stay out of logs
    uvicorn.Server(config).run()
