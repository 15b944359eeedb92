"""The sign-in API's edge: typed plug-in offers and answers, mapped to and from the JSON the
agent, the authenticator and the pages have always exchanged."""

from __future__ import annotations

from typing import Any

import pytest

from cardvault.services.signin.factors import (
    CodeOffer,
    FactorAnswer,
    HrCardOffer,
    Offer,
    PushOffer,
    SecurityKeyOffer,
)
from cardvault.web.api.signin import LoginOut, SecondFactorIn, offer_out

OPTIONS: dict[str, Any] = {
    "publicKey": {
        "challenge": "q2Vq",
        "rpId": "cardvault.example",
        "allowCredentials": [{"type": "public-key", "id": "AAEC"}],
        "userVerification": "required",
    }
}


@pytest.mark.parametrize(
    ("offer", "json"),
    [
        (CodeOffer(method="totp", digits=6), {"method": "totp", "digits": 6}),
        (
            PushOffer(method="authenticator", devices=2, connected=1, totp=True, digits=6),
            {
                "method": "authenticator",
                "devices": 2,
                "connected": 1,
                "push": True,
                "totp": True,
                "digits": 6,
            },
        ),
        (
            SecurityKeyOffer(
                method="fido2", keys=("Blue key", None), user_verification=True, options=OPTIONS
            ),
            {"method": "fido2", "keys": ["Blue key", None], "user_verification": True, **OPTIONS},
        ),
        (HrCardOffer(method="hr_card"), {"method": "hr_card"}),
    ],
)
def test_an_offer_is_sent_as_the_json_the_clients_read(offer: Offer, json: dict[str, Any]) -> None:
    out = LoginOut(transaction_id="t", session_key="k", second_factors=[offer_out(offer)])
    assert out.model_dump(mode="json")["second_factors"] == [json]


@pytest.mark.parametrize(
    ("json", "answer"),
    [
        ({"method": "totp", "code": "123456"}, FactorAnswer(method="totp", code="123456")),
        (
            {"method": "authenticator", "challenge_id": "c1"},
            FactorAnswer(method="authenticator", challenge_id="c1"),
        ),
        (
            {"method": "fido2", "credential": {"id": "AAEC", "response": {}}},
            FactorAnswer(method="fido2", credential={"id": "AAEC", "response": {}}),
        ),
        (
            {"method": "fido2", "proof": "p"},
            FactorAnswer(method="fido2", proof="p", has_proof=True),
        ),
        (
            {"method": "hr_card", "uid": "04A22B1AC35E81"},
            FactorAnswer(method="hr_card", uid="04A22B1AC35E81"),
        ),
    ],
)
def test_an_answer_is_read_into_the_plug_ins_fields(
    json: dict[str, Any], answer: FactorAnswer
) -> None:
    assert SecondFactorIn.model_validate(json).answer() == answer


def test_fields_of_the_wrong_type_are_read_as_absent_so_the_plug_in_refuses_them() -> None:
    answer = SecondFactorIn.model_validate(
        {"method": "fido2", "proof": 7, "challenge_id": ["x"], "uid": 0}
    ).answer()
    assert (answer.proof, answer.has_proof) == (None, True)  # named, so refused as a proof
    assert (answer.challenge_id, answer.uid, answer.code) == (None, None, None)


def test_a_null_field_is_no_field() -> None:
    answer = SecondFactorIn.model_validate({"method": "fido2", "proof": None}).answer()
    assert (answer.proof, answer.has_proof) == (None, False)
