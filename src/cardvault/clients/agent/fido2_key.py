"""The identity agent's FIDO2 security key: CTAP2 over USB HID, as a browser would do it.

The server's ``begin_*`` options go in, the W3C ``toJSON()`` response its ``complete_*``
takes comes out. python-fido2's ``Fido2Client`` does the CTAP2 work (PIN protocol,
credential filtering, keep-alives); this module adds the agent's prompts and turns
the library's error codes into errors a person can act on.

The origin is the cardvault service's own web origin: the agent speaks for it the way a
browser speaks for a page, and the client refuses options whose RP ID that origin may
not use.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from fido2.client import (
    ClientError,
    DefaultClientDataCollector,
    Fido2Client,
    PinRequiredError,
    UserInteraction,
)
from fido2.ctap import CtapDevice, CtapError
from fido2.ctap2.base import Ctap2
from fido2.ctap2.pin import ClientPin
from fido2.hid import CtapHidDevice
from fido2.webauthn import PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions

from cardvault.clients.common.replies import JsonObject
from cardvault.errors import (
    AuthenticationFailed,
    CardvaultError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unavailable,
    error,
)

ERR = CtapError.ERR

# --- errors ----------------------------------------------------------------------------


class NoSecurityKey(NotFound):
    code = "fido2_no_key"


class SecurityKeyRemoved(Unavailable):
    code = "fido2_key_removed"


class SecurityKeyPinRequired(AuthenticationFailed):
    code = "fido2_pin_required"


@error
class WrongSecurityKeyPin(AuthenticationFailed):
    code = "fido2_pin_wrong"
    attempts_remaining: int | None


@error
class SecurityKeyPinBlocked(PermissionDenied):
    code = "fido2_pin_blocked"
    power_cycle: bool


class TouchTimeout(AuthenticationFailed):
    code = "fido2_touch_timeout"


class SecurityKeyNotAllowed(PermissionDenied):
    code = "fido2_not_allowed"


class SecurityKeyNotRegistered(NotFound):
    code = "fido2_key_not_registered"


class SecurityKeyAlreadyRegistered(Conflict):
    code = "fido2_key_already_registered"


class SecurityKeyUnsupported(InvalidInput):
    code = "fido2_key_unsupported"


class RelyingPartyMismatch(InvalidInput):
    code = "fido2_rp_id_mismatch"


@error
class SecurityKeyError(Unavailable):
    code = "fido2_key_error"
    ctap: int | None = None


# --- devices ---------------------------------------------------------------------------


def find_devices() -> list[CtapDevice]:
    """The FIDO security keys plugged in over USB (an empty list when there are none)."""
    try:
        return list(CtapHidDevice.list_devices())
    except OSError as e:  # no hidraw access at all
        raise SecurityKeyError(
            "The security keys could not be listed.",
            remedy="Check that this account may use USB security keys (udev rules).",
        ) from e


def require_device(devices: Sequence[CtapDevice]) -> CtapDevice:
    """The one key to use: the first found, or a clear error when none is plugged in."""
    if not devices:
        raise NoSecurityKey(
            "No security key was found.", remedy="Insert your security key and try again."
        )
    return devices[0]


def wait_for_device(
    list_devices: Callable[[], Sequence[CtapDevice]] = find_devices,
    *,
    timeout: float = 60.0,
    poll: float = 0.25,
    on_wait: Callable[[], None] | None = None,
) -> CtapDevice:
    """The first key plugged in; asks once for one to be inserted, then waits for it."""
    deadline = time.monotonic() + timeout
    devices = list_devices()
    if not devices and on_wait is not None:
        on_wait()
    while not devices and time.monotonic() < deadline:
        time.sleep(poll)
        devices = list_devices()
    return require_device(devices)


# --- ceremonies ------------------------------------------------------------------------

Prompt = Callable[[], None]
PinPrompt = Callable[[], str]


def get_assertion(
    device: CtapDevice,
    *,
    origin: str,
    request_options: JsonObject,
    pin: PinPrompt | None = None,
    on_touch: Prompt | None = None,
    cancel: threading.Event | None = None,
) -> JsonObject:
    """Sign the server's ``begin_assertion`` challenge; the first account when the key
    holds several discoverable ones."""
    options = _public_key(request_options)
    with _key_errors(device):
        client = _client(device, origin, pin, on_touch)
        request = PublicKeyCredentialRequestOptions.from_dict(options)
        selection = client.get_assertion(request, cancel)
        response = selection.get_response(0)
    return _plain(response)


def make_credential(
    device: CtapDevice,
    *,
    origin: str,
    creation_options: JsonObject,
    pin: PinPrompt | None = None,
    on_touch: Prompt | None = None,
    cancel: threading.Event | None = None,
) -> JsonObject:
    """Register the key with the server's ``begin_registration`` options."""
    options = _public_key(creation_options)
    with _key_errors(device):
        client = _client(device, origin, pin, on_touch)
        creation = PublicKeyCredentialCreationOptions.from_dict(options)
        response = client.make_credential(creation, cancel)
    return _plain(response)


class _Prompts(UserInteraction):
    """Routes fido2's prompts to the agent's hooks (a terminal line, a dialog)."""

    def __init__(self, pin: PinPrompt | None, on_touch: Prompt | None) -> None:
        self._pin = pin
        self._on_touch = on_touch

    def prompt_up(self) -> None:
        if self._on_touch is not None:
            self._on_touch()

    def request_pin(self, permissions: ClientPin.PERMISSION, rp_id: str | None) -> str | None:
        return self._pin() if self._pin is not None else None


def _client(
    device: CtapDevice, origin: str, pin: PinPrompt | None, on_touch: Prompt | None
) -> Fido2Client:
    return Fido2Client(device, DefaultClientDataCollector(origin), _Prompts(pin, on_touch))


def _public_key(options: JsonObject) -> JsonObject:
    inner = options.get("publicKey", options)
    if not isinstance(inner, dict) or "challenge" not in inner:
        raise InvalidInput("These are not WebAuthn options from the cardvault service.")
    return dict(inner)


def _plain(response: Mapping[str, object]) -> JsonObject:
    """The W3C ``toJSON()`` form the service's ``complete_*`` takes."""
    plain: JsonObject = json.loads(json.dumps(dict(response)))
    return plain


# --- error translation -----------------------------------------------------------------


@contextmanager
def _key_errors(device: CtapDevice) -> Iterator[None]:
    try:
        yield
    except PinRequiredError as e:
        raise SecurityKeyPinRequired(
            "This security key needs its PIN.", remedy="Enter the key's PIN when asked."
        ) from e
    except ClientError as e:
        raise _from_client_error(e, device) from e
    except CtapError as e:
        raise _from_ctap_error(e.code, device) from e
    except OSError as e:
        raise SecurityKeyRemoved(
            "The security key was removed.", remedy="Insert it again and retry."
        ) from e


def _from_client_error(error: ClientError, device: CtapDevice) -> CardvaultError:
    if isinstance(error.cause, CtapError):
        return _from_ctap_error(error.cause.code, device)
    if error.code == ClientError.ERR.TIMEOUT:
        return _touch_timeout()
    if error.code == ClientError.ERR.CONFIGURATION_UNSUPPORTED:
        return SecurityKeyUnsupported(
            f"This security key cannot do what the sign-in asks ({error.cause}).",
            remedy="If the key has no PIN yet, set one (for example with 'ykman fido "
            "access change-pin'), then retry.",
        )
    if error.code == ClientError.ERR.BAD_REQUEST:
        return RelyingPartyMismatch(
            "The sign-in request is not for the cardvault service this agent talks to."
        )
    return SecurityKeyError(f"The security key failed ({error!r}).")


def _from_ctap_error(code: int, device: CtapDevice) -> CardvaultError:
    if code == ERR.PIN_INVALID:
        return _wrong_pin(device)
    if code in (ERR.PIN_BLOCKED, ERR.PIN_AUTH_BLOCKED):
        return _pin_blocked(power_cycle=code == ERR.PIN_AUTH_BLOCKED)
    if code in (ERR.KEEPALIVE_CANCEL, ERR.ACTION_TIMEOUT, ERR.USER_ACTION_TIMEOUT):
        return _touch_timeout()
    if code == ERR.OPERATION_DENIED:
        return SecurityKeyNotAllowed("The security key refused the request.")
    if code == ERR.NO_CREDENTIALS:
        return SecurityKeyNotRegistered(
            "This security key is not registered for this account.",
            remedy="Use the key you registered, or ask your RA to register this one.",
        )
    if code == ERR.CREDENTIAL_EXCLUDED:
        return SecurityKeyAlreadyRegistered("This security key is already registered.")
    if code in (ERR.PIN_NOT_SET, ERR.PUAT_REQUIRED):
        return SecurityKeyUnsupported(
            "This sign-in needs a security key with a PIN.",
            remedy="Set a PIN on the key, then retry.",
        )
    if code in (ERR.UNSUPPORTED_ALGORITHM, ERR.UNSUPPORTED_OPTION, ERR.KEY_STORE_FULL):
        return SecurityKeyUnsupported("This security key cannot do what the sign-in asks.")
    return SecurityKeyError(f"The security key failed (CTAP error 0x{code:02X}).", ctap=code)


def _wrong_pin(device: CtapDevice) -> CardvaultError:
    attempts = _pin_retries(device)
    left = "" if attempts is None else f" {attempts} attempts left before the key locks."
    return WrongSecurityKeyPin(f"Wrong security key PIN.{left}", attempts_remaining=attempts)


def _pin_retries(device: CtapDevice) -> int | None:
    """Best effort: ask the key how many PIN attempts remain."""
    try:
        return ClientPin(Ctap2(device)).get_pin_retries()[0]
    except (CtapError, ValueError, OSError):
        return None


def _pin_blocked(*, power_cycle: bool) -> CardvaultError:
    if power_cycle:
        return SecurityKeyPinBlocked(
            "Too many wrong PINs in a row.",
            remedy="Remove the security key, insert it again, and retry.",
            power_cycle=True,
        )
    return SecurityKeyPinBlocked(
        "The security key's PIN is blocked.",
        remedy="Only a reset of the key unblocks it, and that erases its credentials: "
        "ask your RA to register the key again afterwards.",
        power_cycle=False,
    )


def _touch_timeout() -> CardvaultError:
    return TouchTimeout(
        "The security key was not touched in time.",
        remedy="Touch the key when it blinks.",
    )
