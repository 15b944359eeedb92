"""A real uvicorn server in a thread, for tests that talk HTTP like real clients do."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from cardvault.services.system.runtime import Runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(app: ASGIApp, *, host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """Serve ``app`` on a free port (or ``port``); yields ``http://localhost:<port>``."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15  # a loaded CI machine starts uvicorn slowly
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_runtime(rt: Runtime, **settings: object) -> Iterator[str]:
    """Serve the test's own runtime at http://localhost:<port>, which is also its public
    address (and so its WebAuthn origin): the test seeds and inspects the same database."""
    from cardvault.web.app import create_app

    port = free_port()
    url = f"http://localhost:{port}"
    rt.settings = rt.settings.model_copy(update={"public_url": url, **settings})
    with serve(create_app(rt), port=port) as served:
        assert served == url
        yield url


@contextmanager
def live_server(rt: Runtime) -> Iterator[str]:
    """The whole cardvault app for ``rt``; yields ``http://127.0.0.1:<port>``."""
    from cardvault.web.app import create_app

    with serve(create_app(rt)) as url:
        yield url.replace("localhost", "127.0.0.1")
