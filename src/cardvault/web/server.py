"""Run the app under uvicorn with TLS."""

from __future__ import annotations

import logging

import uvicorn

from cardvault.services.system.bootstrap import tls_paths
from cardvault.services.system.runtime import Runtime
from cardvault.services.transport import keys as transport_keys
from cardvault.web.app import create_app
from cardvault.web.portal.steps import redact_access_log
from cardvault.web.request_log import configure as json_logs

log = logging.getLogger("cardvault")


#: how long an idle client connection stays open (clients: clients/common/shell.py)
KEEP_ALIVE_SECONDS = 75


def serve(rt: Runtime) -> None:
    json_logs()  # from the first line on, stderr is JSON lines (docs/operator/monitoring.md)
    log.info("cardvault serving on https://%s:%d", rt.settings.host, rt.settings.port)
    transport_keys.ensure_ecdh(rt)  # a service initialised before ECDH-ES gets its key
    cert, key = tls_paths(rt.settings)
    config = uvicorn.Config(
        create_app(rt),
        host=rt.settings.host,
        port=rt.settings.port,
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
    )
    redact_access_log()  # after uvicorn configured its loggers: link tokens stay out of logs
    uvicorn.Server(config).run()
