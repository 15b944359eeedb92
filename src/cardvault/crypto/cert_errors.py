"""Why a certificate, a card key or a CA cannot be used: the errors of the x509 modules.

Apart from the builders so that services and edges can catch them without importing the
certificate machinery. A key the builders refuse raises ``crypto.keys.UnsupportedKey``, the
one error for a key cardvault does not use, whichever module looked at it.
"""

from __future__ import annotations

from cardvault.errors import InvalidInput, error


class CertificateError(InvalidInput):
    """A certificate (usually one an external CA returned) cannot be accepted."""

    code = "certificate_invalid"


class CertificateUnreadable(CertificateError):
    code = "certificate_unreadable"


@error
class CertificateKeyMismatch(CertificateError):
    code = "certificate_key_mismatch"
    usage: str


class CertificateExpired(CertificateError):
    code = "certificate_expired"


class CertificateNotYetValid(CertificateError):
    code = "certificate_not_yet_valid"


@error
class CertificateWrongUsage(CertificateError):
    code = "certificate_wrong_usage"
    usage: str


class CertificateWeakSignature(CertificateError):
    code = "certificate_weak_signature"


class CertificateUntrustedIssuer(CertificateError):
    code = "certificate_untrusted_issuer"


class CaKeyMismatch(InvalidInput):
    code = "ca_key_mismatch"


class CaUnusable(InvalidInput):
    """The CA certificate is not a CA, or is not valid now, so it must not issue."""

    code = "ca_unusable"
