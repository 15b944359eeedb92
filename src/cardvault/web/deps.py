"""Request-scoped dependencies shared by routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt = request.app.state.runtime
    assert isinstance(rt, Runtime)
    return rt


def engine(request: Request) -> Engine:
    eng = request.app.state.engine
    assert isinstance(eng, Engine)
    return eng


def bearer_token(authorization: Annotated[str | None, Header()] = None) -> str:
    """The card session token from ``Authorization: Bearer …``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
        raise SessionInvalid("Sign in first: this needs a card session.")
    return token.strip()


#: the route parameters these dependencies fill, declared once
RuntimeDep = Annotated[Runtime, Depends(runtime)]
EngineDep = Annotated[Engine, Depends(engine)]
BearerToken = Annotated[str, Depends(bearer_token)]
