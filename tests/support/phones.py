"""A paired phone played by the test: the device key the authenticator app would hold,
signed requests and signed answers to push challenges, through the device services."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlsplit

import pyotp

from cardvault.crypto import device as dcrypto
from cardvault.domain.push_policy import PushStatus
from cardvault.services.devices import pairing, push_answers
from cardvault.services.devices.requests import DeviceCaller, SignedRequest, authenticate
from cardvault.services.system.runtime import Actor, Runtime
from tests.support import auth as a
from tests.support import factories as f


@dataclass(frozen=True)
class Phone:
    key: dcrypto.DeviceKey
    device_id: str
    totp_secret: str = field(default="", repr=False)

    def code(self, at: float | None = None) -> str:
        """The one-time code the app shows (computed independently, with pyotp)."""
        return pyotp.TOTP(self.totp_secret).at(at if at is not None else time.time())

    def request(
        self, path: str = "/api/v1/device", body: bytes = b"", **kw: object
    ) -> SignedRequest:
        ts = int(kw.get("ts", time.time()))  # type: ignore[call-overload]
        nonce = str(kw.get("nonce", secrets.token_urlsafe(16)))
        message = dcrypto.request_signing_input(
            method="GET", path=path, timestamp=ts, nonce=nonce, body=body
        )
        return SignedRequest(
            device_id=self.device_id,
            timestamp=str(ts),
            nonce=nonce,
            signature=dcrypto.b64url(self.key.sign(message)),
            method="GET",
            path=path,
            body=body,
        )

    def answer(
        self, challenge_id: str, number: str, decision: str = "approve"
    ) -> push_answers.Answer:
        message = dcrypto.answer_signing_input(
            challenge_id=challenge_id, number=number, decision=decision
        )
        return push_answers.Answer(
            challenge_id=challenge_id,
            number=number,
            decision=decision,
            signature=dcrypto.b64url(self.key.sign(message)),
        )

    def caller(self, rt: Runtime) -> DeviceCaller:
        """The phone as the push routes see it after a signed request."""
        return authenticate(rt, a.client(), self.request(), for_challenges=True)

    def respond(
        self, rt: Runtime, challenge_id: str, number: str, decision: str = "approve"
    ) -> PushStatus:
        """The holder answers a push on the phone (typing ``number``)."""
        return push_answers.answer(rt, self.caller(rt), self.answer(challenge_id, number, decision))


def pairing_token(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["token"][0]


def pair_request(token: str, key: dcrypto.DeviceKey, passcode: str) -> pairing.PairRequest:
    public = dcrypto.b64url(key.public_der())
    proof = key.sign(dcrypto.pairing_signing_input(token=token, public_key=public))
    return pairing.PairRequest(
        token=token,
        passcode=passcode,
        public_key=public,
        proof=dcrypto.b64url(proof),
        name="Test phone",
        platform="test",
    )


def pair(rt: Runtime, operator: Actor, serial: str, org_code: str = "ORG1") -> Phone:
    """Pair a new phone with the card (the holder types the passcode in the app)."""
    inv = pairing.create_pairing(rt, operator, serial=serial, org_code=org_code)
    return pair_with_uri(rt, inv.uri)


def pair_with_uri(rt: Runtime, uri: str, application: str = "authenticator") -> Phone:
    """A new phone scans a pairing QR code's ``uri``; the holder types the passcode."""
    key = dcrypto.DeviceKey.generate()
    req = pair_request(pairing_token(uri), key, f.STRONG_PASSCODE)
    done = pairing.pair(rt, a.client(), replace(req, application=application))
    return Phone(key, done.device_id, done.totp_secret)
