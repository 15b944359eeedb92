"""The RA API's role check: one dependency per permission, as the vRA Manager's ``RaGate``.

Each RA API endpoint that takes a bearer token depends on exactly one ``ApiRaGate``; the
role matrix test finds it on the route and checks every role against it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cardvault.domain.vocabulary import RaPermission, roles_allowed
from cardvault.services.ra import actions as ra_actions
from cardvault.services.ra.actions import RaContext
from cardvault.web.client_address import actor_for
from cardvault.web.deps import BearerToken, RuntimeDep


class ApiRaGate:
    """The RA of the bearer token's card session, acting under a role that holds
    ``permission`` (403 otherwise; 401 without a valid session)."""

    def __init__(self, permission: RaPermission) -> None:
        self.permission = permission
        self.roles = roles_allowed(permission)

    def __call__(
        self,
        request: Request,
        rt: RuntimeDep,
        token: BearerToken,
    ) -> RaContext:
        return ra_actions.context(rt, token, actor_for(request, rt).client_address, self.roles)


Viewer = Annotated[RaContext, Depends(ApiRaGate(RaPermission.VIEW_PEOPLE))]
PeopleManager = Annotated[RaContext, Depends(ApiRaGate(RaPermission.MANAGE_PEOPLE))]
Agent = Annotated[RaContext, Depends(ApiRaGate(RaPermission.MANAGE_CARDS))]
Sponsor = Annotated[RaContext, Depends(ApiRaGate(RaPermission.APPROVE_CARDS))]
RoleGranter = Annotated[RaContext, Depends(ApiRaGate(RaPermission.GRANT_ROLES))]
Manager = Annotated[RaContext, Depends(ApiRaGate(RaPermission.MANAGE_SETTINGS))]
