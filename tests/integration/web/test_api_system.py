"""The API skeleton over real HTTP: health, JWKS, OpenAPI, problem+json, body limits."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.support import auth as a

from cardvault import __version__
from cardvault.services.system.runtime import Actor, Runtime

PROBLEM = "application/problem+json"
PRIVATE_JWK_FIELDS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.fixture
def client(live_url: str, rt: Runtime, operator: Actor) -> Iterator[httpx.Client]:
    a.local_network(rt, operator)
    with httpx.Client(base_url=live_url, timeout=10) as http:
        yield http


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, object] = response.json()
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"] == f"urn:cardvault:problem:{code}"
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


def test_health_says_ok(client: httpx.Client) -> None:
    answer = client.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "version": __version__,
        "database": "ok",
        "audit_anchor": "ok",
        "sealed": False,
    }


def test_jwks_publishes_an_ecdh_and_an_rsa_oaep_public_key(
    client: httpx.Client, rt: Runtime
) -> None:
    answer = client.get("/.well-known/jwks.json")
    assert answer.status_code == 200
    keys = {key["alg"]: key for key in answer.json()["keys"]}
    assert set(keys) == {"RSA-OAEP-256", "ECDH-ES+A256KW"}  # DESIGN §3.5 (revised)
    rsa, ec = keys["RSA-OAEP-256"], keys["ECDH-ES+A256KW"]
    assert rsa["kty"] == "RSA"
    assert {"n", "e"} <= set(rsa)
    assert ec["kty"] == "EC"
    assert ec["crv"] == "P-256"
    assert {"x", "y"} <= set(ec)
    for key in (rsa, ec):
        assert key["kid"]
        assert key["use"] == "enc"
        assert not PRIVATE_JWK_FIELDS & set(key), sorted(key)
        assert (rt.settings.keys_dir / "transport" / f"{key['kid']}.sealed").exists()


def test_openapi_document_lists_the_system_paths(client: httpx.Client) -> None:
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    spec = answer.json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "cardvault"
    assert {"/api/v1/health", "/.well-known/jwks.json"} <= set(spec["paths"])
    assert "get" in spec["paths"]["/api/v1/health"]


def test_unknown_path_is_a_not_found_problem(client: httpx.Client) -> None:
    _problem(client.get("/api/v1/no-such-thing"), 404, "not_found")
    _problem(client.delete("/api/v1/health"), 405, "method_not_allowed")


def test_body_over_the_declared_limit_is_refused(client: httpx.Client, rt: Runtime) -> None:
    limit = rt.settings.max_body_bytes
    answer = client.post(
        "/api/v1/ra/role",
        content=b"{" + b" " * limit + b"}",
        headers={"content-type": "application/json"},
    )
    body = _problem(answer, 413, "too_large")
    assert str(limit) in str(body["detail"])


def test_a_large_declared_body_gets_its_refusal_not_a_reset(
    live_url: str, rt: Runtime, operator: Actor
) -> None:
    # A client that is slow to send a megabyte it declared must still read the 413: had the
    # service answered and closed at once, the kernel would reset the connection and the
    # client would see a broken pipe. The service drains such a body before it refuses.
    a.local_network(rt, operator)
    url = httpx.URL(live_url)
    body = b"x" * (1024 * 1024)
    head = (
        f"POST /api/v1/ra/role HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.host, url.port or 80), timeout=10) as conn:
        conn.sendall(head)
        time.sleep(0.3)  # the service has seen the headers and decided by now
        conn.sendall(body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
            if b"}" in answer:
                break
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"code":"too_large"' in rest


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/v1/ra/role", "application/json"), ("/api/v1/auth/login", "application/jose")],
)
def test_chunked_body_over_the_limit_is_refused(
    client: httpx.Client, rt: Runtime, path: str, content_type: str
) -> None:
    chunks = rt.settings.max_body_bytes // 4096 + 2

    def body() -> Iterator[bytes]:
        for _ in range(chunks):
            yield b"a" * 4096

    answer = client.post(path, content=body(), headers={"content-type": content_type})
    assert "content-length" not in answer.request.headers
    assert answer.request.headers["transfer-encoding"] == "chunked"
    _problem(answer, 413, "too_large")


def test_openapi_describes_what_travels_inside_the_envelopes(client: httpx.Client) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    body = login["requestBody"]["content"]["application/jose"]["schema"]
    assert body["type"] == "string"
    claims = body["x-cardvault-claims"]
    assert {"identifier", "passcode"} <= set(claims["required"])
    answer = login["responses"]["200"]["content"]["application/jose"]["schema"]
    assert "session_key" in answer["x-cardvault-claims"]["properties"]
    refused = login["responses"]["4XX"]["content"]["application/problem+json"]["schema"]
    assert {"title", "code", "status"} <= set(refused["required"])
    apdu = spec["paths"]["/api/v1/piv/apdu"]["post"]["requestBody"]["content"]
    assert "apdu" in apdu["application/jose"]["schema"]["x-cardvault-claims"]["properties"]


def test_openapi_describes_every_api_refusal_as_a_problem(client: httpx.Client) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    schema = spec["components"]["schemas"] if "components" in spec else {}
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/api/v1/")
        for method, op in item.items()
    ]
    assert len(operations) > 20
    for path, method, op in operations:
        refused = op["responses"].get("4XX")
        assert refused is not None, (method, path)
        problem = refused["content"]["application/problem+json"]["schema"]
        problem = schema.get(problem.get("$ref", "").rsplit("/", 1)[-1], problem)
        assert {"type", "title", "status", "detail", "instance", "code"} <= set(
            problem["properties"]
        ), (method, path)


def test_a_refusal_names_its_detail_and_the_request_it_answers(client: httpx.Client) -> None:
    answer = client.get("/api/v1/no-such-thing")
    body = answer.json()
    assert (body["status"], body["instance"]) == (404, "/api/v1/no-such-thing")
    assert (body["title"], body["detail"]) == ("Not found", "Not Found")
