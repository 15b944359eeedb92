"""An organisation's client networks as its RA manager sees and changes them (DESIGN §3.6).

Only the ``ra_manager`` role may change them, in the organisation they act in. A change that
would leave the RA manager's own current address outside the list would lock them out of
the vRA Manager for this organisation the moment it is saved; it is refused unless they
confirm it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cardvault.domain.networks import AllowList, changed_networks, split_entries
from cardvault.domain.vocabulary import RaRole
from cardvault.errors import PermissionDenied
from cardvault.services.networks import changes as org_networks
from cardvault.services.ra.actions import RaContext
from cardvault.services.ra.errors import WouldLockOut
from cardvault.services.system.runtime import Runtime

MANAGERS = (RaRole.RA_MANAGER,)


@dataclass(frozen=True, kw_only=True)
class NetworksPage:
    """The organisation's networks page, and where the RA manager is now."""

    organisation_code: str
    organisation_name: str
    networks: tuple[str, ...]
    #: where the RA manager is now, and whether the list (as it is) includes it
    client_address: str | None
    client_inside: bool


@dataclass(frozen=True, kw_only=True)
class NetworksForm:
    """What the page sends: the whole list as typed, the list it showed, confirmations."""

    text: str
    shown: tuple[str, ...]
    allow_everywhere: bool = False
    lock_out_confirmed: bool = False


def page(rt: Runtime, ctx: RaContext) -> NetworksPage:
    """The organisation's networks page; raises PermissionDenied unless the RA is a manager."""
    _require_manager(ctx)
    view = org_networks.show(rt, ctx.organisation_code)
    return _page(ctx, view.code, view.name, view.networks)


def change(rt: Runtime, ctx: RaContext, form: NetworksForm) -> org_networks.OrganisationNetworks:
    """Replace the list with the one typed; audited as the RA manager's action."""
    _require_manager(ctx)
    entries = tuple(split_entries(form.text))
    new = changed_networks(form.shown, replace=entries, allow_everywhere=True)
    address = ctx.actor.client_address
    if not form.lock_out_confirmed and address not in AllowList.of(new):
        raise WouldLockOut(
            f"Your address now, {address or 'unknown'}, is not on the new list: once it is "
            f"saved you cannot use the vRA Manager for {ctx.organisation_code} from here. Add "
            "your network, or confirm that you mean it.",
            field="networks",
        )
    return org_networks.change(
        rt,
        ctx.actor,
        org_networks.NetworksChange(
            replace=entries, allow_everywhere=form.allow_everywhere, expected=form.shown
        ),
        org_id=ctx.organisation_id,
    )


def _require_manager(ctx: RaContext) -> None:
    if ctx.role not in MANAGERS:
        raise PermissionDenied("Only an RA manager can see and change the organisation's networks.")


def _page(ctx: RaContext, code: str, name: str, networks: tuple[str, ...]) -> NetworksPage:
    address = ctx.actor.client_address
    return NetworksPage(
        organisation_code=code,
        organisation_name=name,
        networks=networks,
        client_address=address,
        client_inside=address in AllowList.of(networks),
    )
