"""What paired phones raise: pairing, signed requests, push, QR sign-in and unlock."""

from __future__ import annotations

from dataclasses import field

from cardvault.errors import (
    AuthenticationFailed,
    Conflict,
    PermissionDenied,
    error,
)


@error
class DeviceNotRecognised(AuthenticationFailed):
    """Unknown or revoked device, or a card that can no longer be used: one answer for all."""

    code = "device_not_recognised"

    message: str = field(default="This device is not paired with a usable card.", kw_only=False)
    remedy: str | None = field(
        default="Pair the app again with a new QR code from your RA.", init=False
    )


class TooManyDevices(Conflict):
    """The card has as many paired phones as it may have."""

    code = "too_many_devices"


class BiometricUnlockFailed(AuthenticationFailed):
    """The phone's biometric unlock did not open the card (its key slot or signature)."""

    code = "biometric_unlock_failed"


class PairingInvalid(AuthenticationFailed):
    """The pairing code or its proof is unknown or does not check out."""

    code = "pairing_invalid"


class PairingExpired(AuthenticationFailed):
    """The pairing code has expired; the RA makes a new one."""

    code = "pairing_expired"


class PairingUsed(Conflict):
    """The pairing code was used already (perhaps by another phone)."""

    code = "pairing_used"


class TransactionInvalid(AuthenticationFailed):
    """The same answer as the engine's: the sign-in has ended or never was."""

    code = "transaction_invalid"


class NoPairedDevice(Conflict):
    """The card has no paired phone to send a push request to."""

    code = "no_paired_device"


@error
class PushRateLimited(Conflict):
    """Too many push requests to this card's phone lately; ``retry_after`` seconds to wait."""

    code = "push_rate_limited"
    retry_after: int


@error
class ChallengeClosed(Conflict):
    """The push request has been answered, cancelled or has expired: ``push_status`` says which."""

    code = "challenge_closed"
    push_status: str


class WrongNumber(Conflict):
    """The number chosen on the phone is not the one shown on the PC."""

    code = "wrong_number"


@error
class PushNotAnswered(Conflict):
    """Continue was chosen before the phone answered: no guess was made, nothing counts."""

    code = "push_pending"
    message: str = field(default="Your phone has not answered the request yet.", init=False)
    remedy: str | None = field(
        default="Type the number shown here on your phone and approve, then continue.",
        init=False,
    )


class QrRequestInvalid(AuthenticationFailed):
    """The QR sign-in request is unknown, or its answer does not check out."""

    code = "qr_request_invalid"


class QrRequestClosed(Conflict):
    """The QR sign-in request was answered, cancelled or has expired."""

    code = "qr_request_closed"


class RequestStale(AuthenticationFailed):
    """A signed device request is too old (or from a clock far off)."""

    code = "device_request_stale"


class RequestReplayed(AuthenticationFailed):
    """A signed device request was seen before."""

    code = "device_request_replayed"


@error
class RouteNotAllowed(PermissionDenied):
    """The organisation's policy does not allow sign-ins that start this way (``method``)."""

    method: str
