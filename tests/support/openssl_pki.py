"""What a relying party that knows nothing of cardvault does: fetch the CRL and ask the OCSP
responder at the URLs the certificate names, then run ``openssl verify`` and ``openssl ocsp``."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID


def crl_url(cert: x509.Certificate) -> str:
    points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    names = points[0].full_name
    assert names is not None
    return str(names[0].value)


def ocsp_url(cert: x509.Certificate) -> str:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    (ocsp,) = [d for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]
    return str(ocsp.access_location.value)


def ca_issuers_url(cert: x509.Certificate) -> str:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    (issuers,) = [d for d in aia if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS]
    return str(issuers.access_location.value)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (test URL)
        body: bytes = response.read()
        return body


def openssl(*args: str | Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, timeout=30, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


def crl_pem(der: bytes, folder: Path) -> Path:
    """The DER CRL as PEM, converted by openssl itself (``verify -CRLfile`` reads PEM)."""
    (folder / "crl.der").write_bytes(der)
    out = folder / "crl.pem"
    openssl("crl", "-inform", "DER", "-in", folder / "crl.der", "-out", out, check=True)
    return out


def verify_with_crl(ca_pem: Path, cert_pem: Path, crl: Path) -> subprocess.CompletedProcess[str]:
    return openssl("verify", "-crl_check", "-CAfile", ca_pem, "-CRLfile", crl, cert_pem)


def ocsp_query(
    ca_pem: Path, cert_pem: Path, url: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return openssl(
        "ocsp", "-issuer", ca_pem, "-cert", cert_pem, "-url", url, "-CAfile", ca_pem, *extra
    )
