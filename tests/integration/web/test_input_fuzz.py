"""No input makes the service answer 5xx or drop the connection (DESIGN §3.5, issue 14).

The whole request path, over real HTTP: every route the app has (walked from the app, so a
new route is covered without touching this file) gets random bytes, random and hostile JSON
(deep, wide, huge numbers, odd unicode, wrong types) and properly encrypted envelopes of
random JSON, some with a real card session's token inside. Hypothesis draws a bounded number
of examples so that this stays a matter of seconds; the explicit cases first make sure that
every route sees the regression that started it, a body nested 10,000 deep.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from pydantic import BaseModel
from tests.support import auth as a
from tests.support.live_server import serve

from cardvault.services.signin.engine import Engine
from cardvault.services.system.runtime import Actor, Runtime
from cardvault.web.app import create_app
from cardvault.web.jose import JOSE, JOSE_BODY

DEEP = 10_000
CONTENT_TYPES = [
    None,
    "application/json",
    JOSE,
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "text/plain",
    "application/merge-patch+json",
]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    takes_envelope: bool

    def url(self, fill: str) -> str:
        parts = self.path.split("/")
        return "/".join(fill if p.startswith("{") and p.endswith("}") else p for p in parts)


def endpoints(app: FastAPI) -> list[Endpoint]:
    """Every (method, path) the app routes, read from the app itself."""
    found = []
    for route in _walk(app.routes):
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if not path or not methods:
            continue  # a mount (static files): no routes of its own to fuzz
        extra = getattr(route, "openapi_extra", None)
        for method in sorted(methods - {"HEAD"}):
            found.append(Endpoint(method, path, extra == JOSE_BODY))
    return found


def _walk(routes: Any) -> Iterator[Any]:
    for route in routes:
        # FastAPI keeps included routers as one entry that expands to its routes
        expand = getattr(route, "effective_route_contexts", None)
        yield from expand() if expand else [route]


# --- what is sent ---------------------------------------------------------------------------


@dataclass
class Target:
    """The served app, a real card session and the names the API's models use."""

    http: httpx.Client
    jwk: dict[str, Any]
    routes: list[Endpoint]
    field_names: list[str]
    plausible: dict[str, list[Any]]


def seal(jwk: dict[str, Any], plaintext: bytes) -> str:
    """A proper envelope around any plaintext, sealed by the independent jwcrypto."""
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": jwk["kid"]}
    token = jwcrypto_jwe.JWE(
        plaintext, protected=json.dumps(header), algs=[header["alg"], header["enc"]]
    )
    token.add_recipient(jwcrypto_jwk.JWK(**jwk))
    return str(token.serialize(compact=True))


def envelope_text(claims_json: str) -> bytes:
    """The plaintext of a valid request envelope whose claims are ``claims_json`` (any JSON
    text; when it is an object its members join the reserved claims)."""
    rk = secrets.token_urlsafe(32)[:43]
    reserved = (
        f'"jti":"{secrets.token_urlsafe(16)}","exp":{int(time.time()) + 60},'
        f'"iat":{int(time.time())},"rk":"{rk}"'
    )
    inner = claims_json.strip()
    if inner.startswith("{") and inner.endswith("}") and inner[1:-1].strip():
        return ("{" + reserved + "," + inner[1:]).encode()
    return ("{" + reserved + ',"x":' + inner + "}").encode()


def nested(depth: int, kind: str = "[") -> str:
    """``[[[…0…]]]`` or ``{"a":{"a":…0…}}``, ``depth`` levels deep."""
    opener, closer = ("[", "]") if kind == "[" else ('{"a":', "}")
    return opener * depth + "0" + closer * depth


HOSTILE_JSON = [
    nested(DEEP),
    nested(DEEP, "{"),
    nested(33),
    "[" + ",".join("0" for _ in range(10_000)) + "]",
    "1" * 5000,
    "[1e999]",
    "[-1e-999]",
    '{"identifier": 12345678901234567890123456789012345678901234567890}',
    '"\\ud800"',
    '{"\\udfff": "\\u0000"}',
    '{"a": 1, "a": 2}',
    "[NaN, Infinity]",
    "\ufeff{}",
    '{"identifier": {"kind": "email", "value": "\\u202e@example.org"}, "passcode": "x"}',
    '{"identifier": [], "passcode": {}, "second_factor": "totp", "transaction_id": 7}',
    '{"credential": {"response": {"clientDataJSON": "' + "W" * 400 + '"}}}',
    "null",
    "",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def claims(draw: st.DrawFn, target: Target) -> str:
    """JSON text for a request: often an object with the API's own field names."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(HOSTILE_JSON))
    if draw(st.booleans()):
        return json.dumps(draw(json_values))
    names = draw(st.lists(st.sampled_from(target.field_names), max_size=6, unique=True))
    body = {}
    for name in names:
        known = target.plausible.get(name)
        if known and draw(st.booleans()):
            body[name] = draw(st.sampled_from(known))
        else:
            body[name] = draw(json_values)
    return json.dumps(body)


path_fill = st.sampled_from(["x", "0" * 36, "ABC-123", "%00", "..", "%E2%80%AE", "a" * 300]) | (
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=60)
)


@st.composite
def requests(draw: st.DrawFn, target: Target) -> tuple[Endpoint, str, bytes, str | None, bool]:
    route = draw(st.sampled_from(target.routes))
    kind = draw(st.sampled_from(["bytes", "json", "envelope"]))
    if kind == "bytes":
        body, ctype = draw(st.binary(max_size=300)), draw(st.sampled_from(CONTENT_TYPES))
    elif kind == "json":
        body, ctype = draw(claims(target)).encode(), draw(st.sampled_from(CONTENT_TYPES[:2]))
    else:
        body, ctype = seal(target.jwk, envelope_text(draw(claims(target)))).encode(), JOSE
    return route, draw(path_fill), body, ctype, draw(st.booleans())


# --- the test -------------------------------------------------------------------------------


def _field_names() -> list[str]:
    """Every field name of the request and response models the web layer defines."""
    import cardvault.web.api  # noqa: F401 -- the models are defined on import

    names: set[str] = set()
    stack: list[type[BaseModel]] = list(BaseModel.__subclasses__())
    while stack:
        model = stack.pop()
        stack.extend(model.__subclasses__())
        if model.__module__.startswith("cardvault.web"):
            names.update(model.model_fields)
    return sorted(names)


@pytest.fixture
def target(rt: Runtime, operator: Actor) -> Iterator[Target]:
    rt.settings = rt.settings.model_copy(update={"reset_request_min_seconds": 0})
    a.open_org(rt, operator)
    holder = a.holder(rt, operator)
    result = a.login(Engine(rt), holder, code=holder.code())
    assert result.session is not None
    plausible: dict[str, list[Any]] = {
        "token": [result.session.token],
        "session_key": [base64.b64encode(result.session_key).decode()],
        "identifier": [{"kind": "email", "value": holder.email}],
        "transaction_id": [result.transaction_id],
        "serial": [holder.card.serial],
        "key": ["authentication", "content-commitment"],
        "digest": [base64.b64encode(bytes(32)).decode()],
        "purpose": ["holder", "ra"],
    }
    app = create_app(rt)
    with serve(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        keys = http.get("/.well-known/jwks.json").json()["keys"]
        jwk = next(k for k in keys if k["alg"] == "RSA-OAEP-256")  # what seal() speaks
        yield Target(
            http=http,
            jwk=jwk,
            routes=endpoints(app),
            field_names=_field_names(),
            plausible=plausible,
        )


def send(
    target: Target,
    route: Endpoint,
    fill: str,
    body: bytes,
    ctype: str | None,
    *,
    bearer: bool = False,
) -> httpx.Response:
    headers = {"content-type": ctype} if ctype else {}
    if bearer:
        headers["authorization"] = f"Bearer {target.plausible['token'][0]}"
    url = route.url(fill)
    try:
        response = target.http.request(route.method, url, content=body, headers=headers)
    except httpx.TransportError as exc:  # a dropped connection is as bad as a 500
        pytest.fail(f"{route.method} {url} ({ctype}, {body[:80]!r}…) dropped: {exc!r}")
    assert response.status_code < 500, (
        f"{route.method} {url} ({ctype}, {body[:80]!r}…) → {response.status_code} "
        f"{response.text[:300]}"
    )
    return response


def _device_signed(route: Endpoint) -> bool:
    """The phone's signed requests: the signature is checked before the body is opened."""
    return route.path.startswith("/api/v1/device/") and route.path != "/api/v1/device/pair"


def test_every_route_refuses_a_body_nested_10000_deep_with_a_400(target: Target) -> None:
    assert len(target.routes) > 50  # the walk found the app's routes, not an empty list
    sealed = seal(target.jwk, envelope_text(nested(DEEP))).encode()
    deep = nested(DEEP).encode()
    for route in target.routes:
        answer = send(target, route, "x", sealed, JOSE)
        if route.takes_envelope and not _device_signed(route):
            assert answer.status_code == 400, (route, answer.text)
            assert answer.json()["code"] == "json_too_deep"
            assert "payload is nested more than 32 levels" in answer.json()["detail"]
        for ctype in (None, "application/json"):
            answer = send(target, route, "x", deep, ctype)
            if route.method != "GET":
                assert answer.status_code == 400, (route, answer.text)
                assert answer.json()["code"] == "json_too_deep"


def test_every_route_survives_hostile_json_plain_and_enveloped(target: Target) -> None:
    for route in target.routes:
        if route.method == "GET":
            continue  # no GET route reads a body (the random test still sends them some)
        for text in HOSTILE_JSON:
            send(target, route, "x", text.encode(), "application/json")
            if route.takes_envelope:
                send(target, route, "x", seal(target.jwk, envelope_text(text)).encode(), JOSE)


def test_random_requests_to_random_routes_never_get_5xx(target: Target) -> None:
    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(requests(target))
    def one(request: tuple[Endpoint, str, bytes, str | None, bool]) -> None:
        route, fill, body, ctype, bearer = request
        send(target, route, fill, body, ctype, bearer=bearer)

    one()
