"""The real service on a free port: uvicorn in a thread, for tests that talk HTTP to it
(the agent, the browser). It serves the test's own runtime, so the test can seed and
inspect the same database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from cardvault.services.runtime import Runtime
from cardvault.web.app import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve(rt: Runtime, **settings: object) -> Iterator[str]:
    """Serve ``rt`` at http://localhost:<port> (the address is also its WebAuthn origin)."""
    port = free_port()
    url = f"http://localhost:{port}"
    rt.settings = rt.settings.model_copy(update={"public_url": url, **settings})
    config = uvicorn.Config(
        create_app(rt), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
