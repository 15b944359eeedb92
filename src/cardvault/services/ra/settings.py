"""An organisation's settings, as its RA managers see and change them (issue 19).

The settings are the organisation's policy (``domain/org_policy.py``); this module names the
ones an RA manager may change, checks each in words a person understands, and audits every
change with its old and new value. The operator's CLI still changes the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cardvault.domain.audit_actions import AuditAction
from cardvault.domain.org_policy import SECOND_FACTORS, OrganisationPolicy
from cardvault.domain.vocabulary import RaPermission, RaRole, SignInRoute
from cardvault.errors import InvalidInput, PermissionDenied
from cardvault.json_types import JsonInput
from cardvault.services.ra.actions import RaContext
from cardvault.services.system.runtime import Runtime
from cardvault.store.db import transaction
from cardvault.store.models import Organisation
from cardvault.store.queries.organisations import policy_of


@dataclass(frozen=True, kw_only=True)
class NumberSetting:
    """A whole-number setting: its policy name, its label and unit, and its bounds."""

    name: str
    label: str
    unit: str
    low: int
    high: int


#: the numbers an RA manager may change, in the order the page shows them
NUMBERS = (
    NumberSetting(name="session_absolute_minutes", label="Longest session", unit="minutes",
                  low=5, high=7 * 24 * 60),
    NumberSetting(name="session_idle_minutes", label="Session ends after idle", unit="minutes",
                  low=1, high=7 * 24 * 60),
    NumberSetting(name="reset_link_minutes", label="Reset links last", unit="minutes",
                  low=5, high=24 * 60),
    NumberSetting(name="card_pin_min_length", label="Shortest card PIN", unit="digits",
                  low=6, high=8),
    NumberSetting(name="certificate_days", label="Certificates last", unit="days",
                  low=1, high=3650),
    NumberSetting(name="renew_days", label="Renewal starts before expiry", unit="days",
                  low=1, high=3649),
    NumberSetting(name="leaver_retention_days", label="Keep leavers for", unit="days",
                  low=0, high=3650),
)  # fmt: skip
#: the yes/no settings, with their labels
SWITCHES = {
    "recovery_requires_second_factor": "A forgotten passcode needs the second factor too",
    "role_grants_need_approval": "A role given to someone else needs a second RA manager",
    "cards_need_sponsor_approval": "A card is issued only to a person a sponsor approved",
    "holders_add_methods": "Card holders may add another phone or security key themselves",
    "in_person_methods": "An invitation may end without a second factor; an RA adds one in person",
    "key_management": "Cards get an encryption key and certificate (S/MIME encryption)",
}
#: the ways a sign-in may start (the policy's ``allowed_methods``), with their labels; a
#: route named like a second factor also allows that factor (see FACTORS)
ROUTES = {
    SignInRoute.AD_ACCOUNT: "Windows account (AD) and passcode",
    SignInRoute.EMAIL: "Email address and passcode",
    SignInRoute.QR: "QR code on the screen, scanned with a paired phone",
    SignInRoute.SECURITY_KEY: "Security key first, without typing an identifier",
    SignInRoute.HR_CARD: "HR card on the reader first",
    SignInRoute.MIA: "Mobile identity agent on a paired phone",
}
assert tuple(ROUTES) == tuple(SignInRoute)  # the stored list keeps this order
#: the second factors an organisation may allow (for sign-in and for a passcode reset)
FACTORS = {
    "authenticator": "Paired phone: a request to approve, or its code when offline",
    "totp": "Authenticator app: a 6-digit code",
    "fido2": "Security key",
    "hr_card": "HR card: a tap on the reader",
}
assert tuple(FACTORS) == SECOND_FACTORS


@dataclass(frozen=True, kw_only=True)
class SettingsView:
    """The organisation's settings as the settings page shows them."""

    organisation_code: str
    organisation_name: str
    allowed_methods: tuple[str, ...]
    #: the second factors allowed, for sign-in and for a passcode reset
    second_factors: tuple[str, ...]
    numbers: dict[str, int]
    switches: dict[str, bool]


@dataclass(frozen=True, kw_only=True)
class SettingsForm:
    """What the page sent: every field as text (checked here, not at the edge)."""

    allowed_methods: tuple[str, ...]
    numbers: Mapping[str, str]
    #: the second factors to allow; None leaves them as they are (a JSON client that does
    #: not send them). The HTML page always sends its boxes.
    second_factors: tuple[str, ...] | None = None
    #: the yes/no settings sent; one not sent stays as it is. The HTML page sends every
    #: box (an unticked box is ``False``); a JSON client sends only what it changes.
    switches: Mapping[str, bool]


@dataclass(frozen=True, kw_only=True)
class Change:
    """One setting changed, with its old and new value (for the audit log)."""

    name: str
    old: JsonInput
    new: JsonInput


def show(rt: Runtime, ctx: RaContext) -> SettingsView:
    """The organisation's settings; raises PermissionDenied unless an RA manager asks."""
    _require_manager(ctx)
    with rt.db() as session:
        org = session.get(Organisation, ctx.organisation_id)
        assert org is not None
        return _view(org, policy_of(org))


def _view(org: Organisation, policy: OrganisationPolicy) -> SettingsView:
    return SettingsView(
        organisation_code=org.code,
        organisation_name=org.name,
        allowed_methods=tuple(policy.allowed_methods),
        second_factors=_factors_of(policy),
        numbers={n.name: int(getattr(policy, n.name)) for n in NUMBERS},
        switches={name: bool(getattr(policy, name)) for name in SWITCHES},
    )


def _factors_of(policy: OrganisationPolicy) -> tuple[str, ...]:
    """The second factors allowed (a policy that names none allows every one)."""
    return tuple(f for f in FACTORS if policy.allows_factor(f))


def _factor_problem(chosen: tuple[str, ...] | None) -> InvalidInput | None:
    if chosen is None:
        return None
    if set(chosen) - set(FACTORS):
        return InvalidInput(
            f"Choose second factors from the list: {', '.join(FACTORS)}.", field="second_factors"
        )
    if not chosen:
        return InvalidInput(
            "Allow at least one second factor: without one, nobody could sign in or reset "
            "their passcode with a second factor.",
            field="second_factors",
        )
    return None


def problems(form: SettingsForm) -> list[InvalidInput]:
    """Every problem of the form at once, each naming its field (for the error summary)."""
    found = []
    for n in NUMBERS:
        text = (form.numbers.get(n.name) or "").strip()
        if not text.isdigit() or not n.low <= int(text) <= n.high:
            found.append(
                InvalidInput(
                    f"{n.label}: enter a whole number of {n.unit} from {n.low} to {n.high}.",
                    field=n.name,
                )
            )
    if strange := sorted(set(form.switches) - set(SWITCHES)):
        found.append(
            InvalidInput(
                f"Unknown yes/no setting {strange[0]!r}; use one of {', '.join(SWITCHES)}.",
                field="switches",
            )
        )
    if factor_problem := _factor_problem(form.second_factors):
        found.append(factor_problem)
    unknown = set(form.allowed_methods) - set(ROUTES)
    if unknown:
        found.append(InvalidInput("Choose sign-in routes from the list.", field="allowed_methods"))
    elif not form.allowed_methods:
        found.append(InvalidInput("Choose at least one sign-in route.", field="allowed_methods"))
    if found:
        return found
    numbers = {n.name: int(form.numbers[n.name]) for n in NUMBERS}
    if numbers["session_idle_minutes"] > numbers["session_absolute_minutes"]:
        found.append(
            InvalidInput(
                "Session ends after idle must not be longer than the longest session.",
                field="session_idle_minutes",
            )
        )
    if numbers["renew_days"] >= numbers["certificate_days"]:
        found.append(
            InvalidInput(
                "Renewal must start less than the certificates' lifetime before expiry.",
                field="renew_days",
            )
        )
    return found


def change(rt: Runtime, ctx: RaContext, form: SettingsForm) -> list[Change]:
    """Save the settings (audited: one event naming each change, old and new value).

    Raises the first of :func:`problems` when the form is not valid; nothing is saved then.
    Returns the changes (none when the form repeats what is stored).
    """
    _require_manager(ctx)
    if found := problems(form):
        raise found[0]
    wanted: dict[str, JsonInput] = {
        "allowed_methods": [r for r in ROUTES if r in form.allowed_methods],
        **{n.name: int(form.numbers[n.name]) for n in NUMBERS},
        **{name: bool(form.switches[name]) for name in SWITCHES if name in form.switches},
    }
    if form.second_factors is not None:
        wanted["second_factors"] = [f for f in FACTORS if f in form.second_factors]
    with transaction(rt.db) as session:
        # two RA managers saving at once: the second waits, then compares with the first's
        org = session.get(Organisation, ctx.organisation_id, with_for_update=True)
        assert org is not None
        policy = OrganisationPolicy.from_dict(org.policy)
        # a policy naming no second factors allows every one: compared as that list
        before = {**policy.as_dict(), "second_factors": list(_factors_of(policy))}
        changes = [
            Change(name=k, old=before.get(k), new=v)
            for k, v in wanted.items()
            if before.get(k) != v
        ]
        if not changes:
            return []
        changed = {c.name: c.new for c in changes}
        org.policy = OrganisationPolicy.from_dict({**policy.as_dict(), **changed}).as_dict()
        ctx.audit_act(
            session,
            rt,
            AuditAction.ORGANISATION_POLICY_CHANGED,
            details={
                "changed": sorted(c.name for c in changes),
                "changes": {c.name: {"old": c.old, "new": c.new} for c in changes},
            },
        )
        return changes


def _require_manager(ctx: RaContext) -> None:
    if not RaRole(ctx.role).allows(RaPermission.MANAGE_SETTINGS):
        raise PermissionDenied("Only an RA manager may change the organisation's settings.")
