"""The public PKI URLs and the profile of a card's certificates (DESIGN §3.9).

Every certificate the built-in CA issues names where its CRL, OCSP responder and CA
certificate are published, under ``CARDVAULT_PKI_BASE_URL`` (default: the public URL).
The CRL and CA paths carry the CA's key identifier, so they stay right for the
certificates a CA issued after the operator replaces it.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardvault.crypto import x509 as cx509
from cardvault.services.system.runtime import Runtime
from cardvault.store.models import AdAccount, Association, Person

OCSP_PATH = "/pki/ocsp"
CRL_PREFIX = "/pki/crl/"
CA_PREFIX = "/pki/ca/"


def base_url(rt: Runtime) -> str:
    """Where relying parties reach ``/pki``, without a trailing slash."""
    return (rt.settings.pki_base_url or rt.settings.base_url).rstrip("/")


def crl_path(ca_cert: cx509.Certificate) -> str:
    """The path of the CRL of the CA ``ca_cert``."""
    return f"{CRL_PREFIX}{cx509.ca_key_id(ca_cert)}.crl"


def ca_path(ca_cert: cx509.Certificate) -> str:
    """The path of ``ca_cert`` itself (its caIssuers URL)."""
    return f"{CA_PREFIX}{cx509.ca_key_id(ca_cert)}.crt"


def links(rt: Runtime, ca_cert: cx509.Certificate) -> cx509.PkiLinks:
    """The URLs a certificate issued by ``ca_cert`` carries."""
    base = base_url(rt)
    return cx509.PkiLinks(
        crl_url=base + crl_path(ca_cert),
        ocsp_url=base + OCSP_PATH,
        ca_issuers_url=base + ca_path(ca_cert),
    )


def ad_account_of(session: Session, card_id: str) -> AdAccount | None:
    """The card's first active AD association (where the UPN and SID come from)."""
    return session.execute(
        select(AdAccount)
        .join(Association, Association.id == AdAccount.association_id)
        .where(Association.card_id == card_id, Association.status == "active")
        .order_by(Association.created_at)
    ).scalar()


def card_profile(
    rt: Runtime,
    *,
    person: Person,
    ad: AdAccount | None,
    ca_cert: cx509.Certificate | None,
) -> cx509.CertProfile:
    """The holder's names and the operator's settings for a card's certificates.

    The UPN and SID come from the card's AD association ``ad`` (a DNS domain makes the UPN
    ``account@domain``; a NetBIOS name alone cannot); ``ca_cert`` None (an external CA)
    leaves out the policy and the links, which are that CA's to set."""
    settings = rt.settings
    upn = sid = None
    if ad is not None:
        if settings.certificate_upn and "." in ad.domain:
            upn = f"{ad.account}@{ad.domain.lower()}"
        if settings.certificate_sid:
            sid = ad.sid
    return cx509.CertProfile(
        email=person.email,
        upn=upn,
        sid=sid,
        policy_oid=settings.certificate_policy_oid if ca_cert is not None else None,
        links=links(rt, ca_cert) if ca_cert is not None else None,
    )
