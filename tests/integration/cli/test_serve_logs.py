"""`cardvault serve` as an operator runs it: its stderr is JSON lines, one event per request
with the request id, and no secret a request carried (a passcode in a form or a JSON body, a
link token in a path, a code in a query) reaches it."""

from __future__ import annotations

import json

import httpx
from tests.support import auth as a
from tests.support.cli import Cli
from tests.support.live import loopback_tls, tls_files, wait_ready
from tests.support.live_server import free_port

from cardvault.services.system.runtime import Actor, Runtime

SECRETS = ("Passcode-In-A-Form-491", "Passcode-In-Json-732", "LinkTokenInPath8842", "774411")


def test_serve_logs_json_lines_without_secrets(cli: Cli, rt: Runtime, operator: Actor) -> None:
    a.local_network(rt, operator)  # the ingress gate admits loopback to /ra and the API
    cert, _key = tls_files(cli.data_dir / "tls")
    tls = loopback_tls(cert)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    server = cli.popen(
        "serve", CARDVAULT_HOST="127.0.0.1", CARDVAULT_PORT=str(port), CARDVAULT_PUBLIC_URL=url
    )
    try:
        wait_ready(url, tls, server)
        with httpx.Client(base_url=url, verify=tls, timeout=30) as http:
            http.post("/ra", data={"identifier": "a@example.org", "passcode": SECRETS[0]})
            http.post(
                "/api/v1/auth/login",
                json={"identifier": {"kind": "email", "value": "a@b.c"}, "passcode": SECRETS[1]},
            )
            http.get(f"/portal/reset/{SECRETS[2]}", params={"code": SECRETS[3]})
            traced = http.get("/readyz", headers={"X-Request-ID": "trace-serve-000001"})
            assert traced.headers["x-request-id"] == "trace-serve-000001"
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)

    lines = [line for line in stderr.splitlines() if line.strip()]
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    for secret in SECRETS:
        assert secret not in stderr, f"{secret!r} is in the log"
    requests = [e for e in events if e.get("event") == "http.request"]
    assert [(e["method"], e["route"]) for e in requests][-4:] == [
        ("POST", "/ra"),
        ("POST", "/api/v1/auth/login"),
        ("GET", "/portal/reset/{token}"),
        ("GET", "/readyz"),
    ]
    assert requests[-1]["request_id"] == "trace-serve-000001"
    assert all(e["level"] in ("debug", "info", "warning", "error") for e in events)
