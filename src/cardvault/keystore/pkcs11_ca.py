"""The issuing CA's private key inside an HSM (the ``pkcs11`` key provider's token).

As with the master key, the key is sensitive and non-extractable in the token: every
certificate, CRL and OCSP responder certificate the CA signs is one C_Sign in the token
(``crypto.external_key`` builds the structure around it). The key is either generated there
(``cardvault ca init --hsm``) or moved there from its sealed file (``cardvault ca
move-to-hsm``): imported with the same attributes, checked by a signature, and only then is
the sealed copy shredded.

``<data>/ca/ca-key.pkcs11.json`` names the token and the key's label; the module and PIN are
the service's PKCS#11 settings, as for the master key.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util import ec as p11ec
from pkcs11.util import rsa as p11rsa

from cardvault.crypto import external_key
from cardvault.errors import InvalidInput
from cardvault.keystore.files import write_private
from cardvault.keystore.pkcs11 import KeyProviderUnavailable, Pkcs11Config, TokenKey, find_one
from cardvault.keystore.pkcs11 import open_session as _open_session
from cardvault.keystore.provider import DataDirDamaged

T = TypeVar("T")
_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
DESCRIPTION = "ca-key.pkcs11.json"
DEFAULT_LABEL = "cardvault-ca"
CA_KEY_BITS = 3072


class Pkcs11CaKey(TokenKey):
    """The CA key as a handle in the token; implements ``crypto.external_key.ExternalKey``.
    Its public key is the CA certificate's (every signature is checked against it)."""

    def __init__(self, config: Pkcs11Config, public: external_key.PublicKey) -> None:
        super().__init__(config, find_private_key)
        self._public = public

    def public_key(self) -> external_key.PublicKey:
        return self._public

    def sign(self, data: bytes, algorithm: external_key.HashAlgorithm) -> bytes:
        """RSA: CKM_SHAxxx_RSA_PKCS over the data; EC: CKM_ECDSA over its hash."""
        if external_key.is_rsa(self._public):
            mechanism = _RSA_MECHANISMS[algorithm.name]
            signed: bytes = self.call(lambda key: key.sign(data, mechanism=mechanism))
            return signed
        hashed = external_key.digest(data, algorithm)
        raw: bytes = self.call(lambda key: key.sign(hashed, mechanism=Mechanism.ECDSA))
        return external_key.ecdsa_der(raw)


def find_private_key(session: Any, config: Pkcs11Config) -> Any:
    """The CA's private key in the token."""
    return find_one(
        session,
        config,
        f"private key labelled {config.key_label!r} (the issuing CA's key)",
        missing=f"Check {DESCRIPTION} and the token, or restore the key in the HSM.",
        object_class=ObjectClass.PRIVATE_KEY,
    )


def _refuse_taken_label(session: Any, config: Pkcs11Config) -> None:
    if list(session.get_objects({Attribute.LABEL: config.key_label})):
        raise InvalidInput(
            f"The token {config.token_label!r} already holds a key labelled {config.key_label!r}.",
            remedy="Choose another --key-label for the CA key.",
        )


def _private_template() -> dict[Any, Any]:
    return {
        Attribute.TOKEN: True,
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.PRIVATE: True,
        Attribute.SIGN: True,
        Attribute.DECRYPT: False,
        Attribute.UNWRAP: False,
    }


def generate(config: Pkcs11Config) -> Pkcs11CaKey:
    """A new RSA-3072 CA key pair made inside the token (the private half never leaves)."""
    session = _open_session(config, rw=True)
    try:
        _refuse_taken_label(session, config)
        key_id = secrets.token_bytes(8)
        public, _private = session.generate_keypair(
            KeyType.RSA,
            CA_KEY_BITS,
            store=True,
            label=config.key_label,
            id=key_id,
            public_template={Attribute.TOKEN: True, Attribute.VERIFY: True},
            private_template=_private_template(),
        )
        modulus = int.from_bytes(public[Attribute.MODULUS], "big")
        exponent = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
    except pkcs11.PKCS11Error as exc:
        raise KeyProviderUnavailable(
            f"The token {config.token_label!r} could not make the CA key ({type(exc).__name__})."
        ) from exc
    finally:
        session.close()
    return Pkcs11CaKey(config, external_key.rsa_public_key(modulus, exponent))


def import_key(
    config: Pkcs11Config, private_der: bytes | bytearray, public: external_key.PublicKey
) -> Pkcs11CaKey:
    """Put an existing CA key (PKCS#1 RSA or SEC1 EC DER) into the token, non-extractable,
    and prove it signs there before anyone relies on it."""
    session = _open_session(config, rw=True)
    try:
        _refuse_taken_label(session, config)
        if external_key.is_rsa(public):
            attributes = p11rsa.decode_rsa_private_key(bytes(private_der))
        else:
            attributes = p11ec.decode_ec_private_key(bytes(private_der))
        attributes.update(_private_template())
        attributes[Attribute.LABEL] = config.key_label
        attributes[Attribute.ID] = secrets.token_bytes(8)
        session.create_object(attributes)
    except (pkcs11.PKCS11Error, ValueError) as exc:
        raise KeyProviderUnavailable(
            f"The token {config.token_label!r} did not accept the CA key ({type(exc).__name__})."
        ) from exc
    finally:
        session.close()
    key = Pkcs11CaKey(config, public)
    external_key.prove(key)
    return key


def describe(ca_folder: Path, config: Pkcs11Config) -> None:
    """Write the description that tells ``load`` where the CA key lives."""
    body = {
        "format": 1,
        "provider": "pkcs11",
        "token_label": config.token_label,
        "key_label": config.key_label,
    }
    write_private(ca_folder / DESCRIPTION, json.dumps(body, indent=2).encode())


def described_label(ca_folder: Path) -> tuple[str, str] | None:
    """(token label, key label) when the CA key is in an HSM; None when it is sealed."""
    path = ca_folder / DESCRIPTION
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        return str(raw["token_label"]), str(raw["key_label"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataDirDamaged(
            f"{path} is damaged: it does not name the token and key of the CA.",
            remedy="Restore the data directory from a backup.",
        ) from exc


def prove(key: Pkcs11CaKey) -> None:
    """The token holds the key and it is the certificate's (one signature, checked)."""
    external_key.prove(key)
