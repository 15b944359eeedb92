"""Chromium's virtual security keys (CDP ``WebAuthn``), shared by the vRA Manager's and the
portal's browser tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from playwright.sync_api import CDPSession, Page


@dataclass
class VirtualKey:
    """One of Chromium's virtual authenticators (CDP ``WebAuthn``), plugged into one page."""

    cdp: CDPSession
    authenticator_id: str

    def remove(self) -> None:
        self.cdp.send(
            "WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.authenticator_id}
        )

    def credentials(self) -> list[dict[str, Any]]:
        got = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        creds: list[dict[str, Any]] = got["credentials"]
        return creds


def plug_in_key(page: Page, *, user_verification: bool = True, verified: bool = True) -> VirtualKey:
    """A USB CTAP2.1 key with resident keys, touched automatically, with or without a PIN."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "ctap2Version": "ctap2_1",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": user_verification,
                "isUserVerified": verified,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return VirtualKey(cdp=cdp, authenticator_id=added["authenticatorId"])
