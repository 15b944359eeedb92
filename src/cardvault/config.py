"""Settings: one object, read from ``CARDVAULT_*`` environment variables, passed down.

Everything has an embedded default so that a fresh machine runs cardvault with nothing
else: SQLite in the data directory, the local master-key provider, a development TLS
certificate and a file outbox for mail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cardvault.crypto.kdf import Argon2Params
from cardvault.domain.networks import parse_networks
from cardvault.domain.rate_limit import Bucket, Rate, Scope
from cardvault.errors import InvalidInput

DEFAULT_SECURITY_QUESTIONS = (
    "What was the name of your first pet?",
    "In which town or city were you born?",
    "What was your childhood nickname?",
    "What is the name of the street you grew up in?",
    "What was the name of your first school?",
    "What was the make of your first car or bicycle?",
    "What is your oldest cousin's first name?",
    "In which town or city did your parents meet?",
)


def _networks(value: list[str], *, allow_everywhere: bool) -> list[str]:
    try:
        return list(parse_networks(value, allow_everywhere=allow_everywhere))
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARDVAULT_", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="where keys, database and outbox live")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file in the data directory"
    )
    host: str = "localhost"
    port: int = Field(default=8443, ge=1, le=65535)
    public_url: str | None = Field(
        default=None, description="the URL holders reach; used in email links"
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="worker processes serving the port (`serve --workers`); above 1 needs "
        "REDIS_URL",
    )
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    webauthn_rp_id: str | None = Field(
        default=None,
        description="WebAuthn relying-party id for security keys; default: the public URL's host",
    )
    webauthn_origins: list[str] = Field(
        default_factory=list,
        description="web origins allowed to use security keys; default: the public URL's origin",
    )
    webauthn_timeout_ms: int = Field(default=60000, ge=1000, le=600000)
    development: bool = Field(
        default=False, description="dev conveniences (outbox links); never in production"
    )

    # master-key provider (DESIGN §3.1; docs/operator/guide.md, "The master key in an HSM")
    key_provider: Literal["local", "pkcs11"] = Field(
        default="local", description="local: sealed key in the data directory; pkcs11: an HSM"
    )
    pkcs11_module: Path | None = Field(default=None, description="the HSM's PKCS#11 library")
    pkcs11_token_label: str | None = Field(default=None, min_length=1, max_length=32)
    pkcs11_key_label: str = Field(default="cardvault-master", min_length=1, max_length=64)
    pkcs11_pin_file: Path | None = Field(
        default=None, description="a file holding the token's user PIN (preferred)"
    )
    pkcs11_pin: str | None = Field(default=None, repr=False, description="the user PIN itself")

    # key derivation: 64 MiB, 3 passes (RFC 9106's second recommendation, with one lane);
    # OWASP's current minimum (19 MiB and 2 passes, or 46 MiB and 1) is refused below
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1, le=16)
    insecure_test_kdf: bool = Field(
        default=False, description="allow Argon2 below OWASP's minimum: for test suites only"
    )
    kdf_concurrency: int | None = Field(
        default=None, ge=1, description="KDF runs at once; default: the number of cores"
    )
    kdf_queue: int | None = Field(
        default=None, ge=0, description="KDFs that may wait; beyond: 429. Default 4 x slots"
    )

    passcode_min_length: int = Field(default=8, ge=8)
    passcode_min_score: int = Field(default=3, ge=2, le=4)

    max_body_bytes: int = Field(default=65536, ge=1024)
    json_max_depth: int = Field(
        default=32, ge=4, le=200, description="deeper JSON (plain or inside an envelope): 400"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="proxies (CIDRs) whose X-Forwarded-For is believed; none: the peer address",
    )
    portal_networks: list[str] = Field(
        default_factory=lambda: ["0.0.0.0/0", "::/0"],
        description="who may reach the self-service portal besides the organisations' "
        "networks (CIDRs); default: everywhere",
    )
    redis_url: str | None = Field(
        default=None, description="Redis for push events across instances; none: one instance"
    )
    redis_prefix: str = Field(default="cardvault", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    ready_requires_redis: bool = Field(
        default=True,
        description="/readyz fails while Redis does not answer; false: it is reported only "
        "(push falls back to the one-time code, rate limits count per instance)",
    )
    metrics_networks: list[str] = Field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"],
        description="who may read /metrics (CIDRs, the client address as TRUSTED_PROXIES "
        "decides it); an empty list turns /metrics off",
    )
    # rate limits on anonymous endpoints (docs/operator/guide.md, "Rate limits"): "N/T" is
    # N requests per T seconds (s), minutes (m) or hours (h), counted per source address and,
    # for *_IDENTIFIER, per identifier typed; "off" lifts one limit
    rate_limits_enabled: bool = Field(default=True, description="false lifts every limit")
    rate_limit_signin: str = "60/1m"
    rate_limit_signin_identifier: str = "10/5m"
    rate_limit_reset: str = "10/15m"
    rate_limit_reset_identifier: str = "3/15m"
    rate_limit_portal: str = "60/5m"
    rate_limit_pairing: str = "10/10m"
    rate_limit_pairing_identifier: str = "5/10m"
    rate_limit_poll: str = "300/1m"
    rate_limit_status: str = "600/1m"
    rate_limit_web_session: str = "120/1m"
    rate_limit_exempt_networks: list[str] = Field(
        default_factory=list,
        description="networks the per-address limits do not apply to (a known NAT, an RP)",
    )
    push_challenge_seconds: int = Field(default=120, ge=5, le=600)
    push_max_pending: int = Field(default=3, ge=1, le=20)
    device_pairing_minutes: int = Field(default=10, ge=1, le=24 * 60)

    # email and SMS (docs/operator/notifications.md)
    service_name: str = Field(
        default="cardvault", max_length=60, description="how emails and the portal name us"
    )
    support_contact: str = Field(
        default="your Registration Authority",
        max_length=200,
        description="whom holders contact, when their organisation's policy names nobody",
    )
    mail_mode: Literal["outbox", "smtp"] = "outbox"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    mail_from: str = "cardvault <no-reply@localhost>"
    sms_mode: Literal["outbox", "webhook", "govuk_notify"] = "outbox"
    sms_webhook_url: str | None = None
    sms_webhook_token: str | None = Field(default=None, repr=False)
    sms_govuk_notify_api_key: str | None = Field(default=None, repr=False)
    sms_govuk_notify_template_id: str | None = None
    notify_dispatcher: bool = Field(
        default=True, description="send queued messages from inside `cardvault serve`"
    )
    notify_poll_seconds: float = Field(default=5.0, gt=0, le=300)
    notify_max_attempts: int = Field(default=10, ge=1, le=50)
    notify_retry_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    #: the forgotten-passcode page answers no sooner than this, enrolled address or not
    reset_request_min_seconds: float = Field(default=0.5, ge=0, le=5)

    # the browser areas (vRA Manager /ra, self-service portal /portal)
    web_idle_minutes: int = Field(
        default=15, ge=1, le=240, description="a web session ends after this long unused"
    )
    web_absolute_minutes: int = Field(default=12 * 60, ge=5, le=24 * 60)
    web_reauth_minutes: int = Field(
        default=10, ge=1, le=60, description="sensitive actions need a sign-in this recent"
    )
    accessibility_contact: str | None = Field(
        default=None,
        max_length=200,
        description="where people report an accessibility problem (an email address or a "
        "web page), named by the accessibility statements at /ra/accessibility and "
        "/portal/accessibility",
    )
    security_questions: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SECURITY_QUESTIONS),
        description="the questions offered at enrolment (a holder may also write their own)",
    )

    # certificates for relying parties (DESIGN §3.9; docs/operator/pki.md)
    pki_base_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="where relying parties reach /pki (CRL, OCSP, CA certificate); "
        "default: the public URL. Written into every certificate issued",
    )
    crl_hours: int = Field(
        default=24, ge=1, le=7 * 24, description="a CRL is re-signed at least this often"
    )
    ocsp_response_minutes: int = Field(
        default=60, ge=1, le=24 * 60, description="how long an OCSP answer stays current"
    )
    certificate_policy_oid: str = Field(
        default="2.5.29.32.0",
        pattern=r"^[0-2](\.(0|[1-9][0-9]{0,18})){1,30}$",
        description="the certificatePolicies OID of card certificates (default: anyPolicy)",
    )
    certificate_upn: bool = Field(
        default=True, description="authentication certificates carry the AD UPN when known"
    )
    certificate_sid: bool = Field(
        default=True, description="authentication certificates carry the AD SID when known"
    )

    # audit anchors (DESIGN §3.7; docs/operator/guide.md, "Audit anchors")
    audit_anchor: Literal["file", "syslog"] = Field(
        default="file",
        description="where signed chain heads are also written: an append-only file, or syslog",
    )
    audit_anchor_file: Path | None = Field(
        default=None, description="the anchor file; default: audit/anchors.jsonl in the data dir"
    )
    audit_anchor_syslog_socket: Path = Field(
        default=Path("/dev/log"), description="the local syslog socket anchors are sent to"
    )
    audit_anchor_min_free_mib: int = Field(
        default=16,
        ge=1,
        le=1024 * 1024,
        description="card operations are refused when the anchor file's disk has less free",
    )

    clock_offset_seconds: int = Field(
        default=0,
        ge=-600,
        le=600,
        description="run this instance's clock this far ahead (or behind): the fault tests "
        "of clock skew between instances; 0 in production",
    )

    @model_validator(mode="after")
    def _kdf_floor(self) -> Settings:
        m, t = self.argon2_memory_kib, self.argon2_time_cost
        strong = (m >= 19456 and t >= 2) or (m >= 47104 and t >= 1)
        if not strong and not self.insecure_test_kdf:
            raise ValueError(
                "Argon2 parameters below OWASP's minimum (19456 KiB with 2 passes, or "
                "47104 KiB with 1 pass) are refused outside test suites"
            )
        return self

    @model_validator(mode="after")
    def _pkcs11_complete(self) -> Settings:
        if self.key_provider != "pkcs11":
            return self
        missing = [
            name
            for name, value in (
                ("CARDVAULT_PKCS11_MODULE", self.pkcs11_module),
                ("CARDVAULT_PKCS11_TOKEN_LABEL", self.pkcs11_token_label),
            )
            if value is None
        ]
        if self.pkcs11_pin is None and self.pkcs11_pin_file is None:
            missing.append("CARDVAULT_PKCS11_PIN_FILE (or CARDVAULT_PKCS11_PIN)")
        if missing:
            raise ValueError(f"the pkcs11 key provider needs {', '.join(missing)}")
        return self

    @field_validator(
        "rate_limit_signin",
        "rate_limit_signin_identifier",
        "rate_limit_reset",
        "rate_limit_reset_identifier",
        "rate_limit_portal",
        "rate_limit_pairing",
        "rate_limit_pairing_identifier",
        "rate_limit_poll",
        "rate_limit_status",
        "rate_limit_web_session",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            return str(Rate.parse(value) or "off")
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @field_validator("rate_limit_exempt_networks")
    @classmethod
    def _exempt_networks(cls, value: list[str]) -> list[str]:
        return _networks(value, allow_everywhere=False)

    def rate_limit(self, bucket: Bucket, scope: Scope) -> Rate | None:
        """The configured rate of ``bucket`` for ``scope``; None when there is no limit."""
        if not self.rate_limits_enabled:
            return None
        suffix = "_identifier" if scope is Scope.IDENTIFIER else ""
        text = getattr(self, f"rate_limit_{bucket.value}{suffix}", "off")
        return Rate.parse(text)

    @field_validator("portal_networks", "metrics_networks")
    @classmethod
    def _networks_or_everywhere(cls, value: list[str]) -> list[str]:
        return _networks(value, allow_everywhere=True)

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        # a /0 would let every client write its own address into X-Forwarded-For
        return _networks(value, allow_everywhere=False)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("audit_anchor_file")
    @classmethod
    def _absolute_anchor(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'cardvault.db'}"

    @property
    def argon2(self) -> Argon2Params:
        return Argon2Params(
            time_cost=self.argon2_time_cost,
            memory_kib=self.argon2_memory_kib,
            parallelism=self.argon2_parallelism,
        )

    @property
    def base_url(self) -> str:
        return self.public_url or f"https://{self.host}:{self.port}"

    @property
    def rp_id(self) -> str:
        """The WebAuthn RP ID: security keys bind their credentials to it for good."""
        return self.webauthn_rp_id or (urlsplit(self.base_url).hostname or self.host)

    @property
    def rp_origins(self) -> tuple[str, ...]:
        if self.webauthn_origins:
            return tuple(o.rstrip("/") for o in self.webauthn_origins)
        parts = urlsplit(self.base_url)
        return (f"{parts.scheme}://{parts.netloc}",)

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def anchor_file(self) -> Path:
        """Where the file anchor appends signed chain heads (DESIGN §3.7)."""
        return self.audit_anchor_file or self.data_dir / "audit" / "anchors.jsonl"
