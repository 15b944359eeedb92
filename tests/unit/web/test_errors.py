"""web/errors.py: every error class has an HTTP status, and a refusal is an RFC 9457 problem."""

from __future__ import annotations

import importlib
import json
import pkgutil
from collections.abc import Iterator

import cardvault
from cardvault.commandline import exit_code_of
from cardvault.crypto.external_key import ExternalSignatureInvalid
from cardvault.domain.rate_limit import Bucket, Scope
from cardvault.errors import AuthenticationFailed, CardvaultError, InvalidInput, NotSetUp
from cardvault.services.pki.errors import CaMissing
from cardvault.services.rate_limits.errors import RateLimited
from cardvault.services.signin.errors import CardLocked, WrongPasscode
from cardvault.web.errors import STATUS, problem_of, status_of, title_of

#: the statuses the service answers with; a new one is a decision, not an accident
#: (502: the HSM, an upstream of ours, returned a signature that does not verify)
KNOWN = {303, 400, 401, 403, 404, 409, 410, 413, 422, 423, 429, 500, 502, 503}


def _error_classes() -> Iterator[type[CardvaultError]]:
    for module in pkgutil.walk_packages(cardvault.__path__, "cardvault."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    todo: list[type[CardvaultError]] = [CardvaultError]
    while todo:
        cls = todo.pop()
        yield cls
        todo += cls.__subclasses__()


def test_every_error_class_has_a_status_the_service_answers_with() -> None:
    classes = list(_error_classes())
    assert len(classes) > 100
    odd = {f"{c.__module__}.{c.__name__}": status_of(c) for c in classes}
    assert {k: v for k, v in odd.items() if v not in KNOWN} == {}
    assert set(STATUS.values()) <= KNOWN


def test_an_error_answers_as_its_category_unless_it_is_listed_itself() -> None:
    assert status_of(WrongPasscode(attempts_left=2)) == 401
    assert status_of(CardLocked("This card is locked.", reason="card is locked")) == 423
    assert status_of(CardLocked) == 423
    assert status_of(NotSetUp("no data directory")) == 500
    assert status_of(CaMissing("no CA")) == 503  # a NotSetUp that the service answers 503
    assert status_of(ExternalSignatureInvalid) == 502  # and one the HSM caused: 502
    assert exit_code_of(ExternalSignatureInvalid) == 9  # not set up, as for any NotSetUp


def test_a_problem_has_the_rfc_members_the_code_and_the_typed_extensions() -> None:
    error = WrongPasscode(attempts_left=2)
    response = problem_of(error, "/api/v1/login")
    body = json.loads(response.body)
    assert response.status_code == 401
    assert response.media_type == "application/problem+json"
    assert body == {
        "type": "urn:cardvault:problem:wrong_passcode",
        "title": "Wrong passcode",
        "status": 401,
        "detail": error.message,
        "instance": "/api/v1/login",
        "code": "wrong_passcode",
        "attempts_left": 2,
    }
    assert "2 attempts left" in body["detail"]


def test_a_problem_title_is_the_same_for_every_instance_of_its_type() -> None:
    bodies = [
        json.loads(problem_of(WrongPasscode(attempts_left=n)).body) for n in (1, 2, 3)
    ]  # fmt: skip
    assert {b["title"] for b in bodies} == {"Wrong passcode"}
    assert len({b["detail"] for b in bodies}) == 3  # what went wrong this time
    assert title_of("card_pin_blocked") == "Card PIN blocked"
    assert title_of("fido2_proof_invalid") == "FIDO2 proof invalid"


def test_a_problem_carries_the_remedy_and_a_retry_after_header() -> None:
    limited = RateLimited(bucket=Bucket.SIGNIN, scope=Scope.ADDRESS, retry_after=42)
    response = problem_of(limited, "/api/v1/login")
    body = json.loads(response.body)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "42"
    assert (body["retry_after"], body["limit"]) == (42, "address")
    assert "bucket" not in body  # not JSON, stays in the process
    refused = problem_of(InvalidInput("Too long.", field="name", remedy="Shorten it."))
    assert json.loads(refused.body)["remedy"] == "Shorten it."
    assert json.loads(refused.body)["field"] == "name"
    assert "instance" not in json.loads(refused.body)


def test_an_optional_attribute_left_out_is_not_a_member() -> None:
    body = json.loads(problem_of(InvalidInput("Malformed.")).body)
    assert "field" not in body
    assert status_of(AuthenticationFailed) == 401
