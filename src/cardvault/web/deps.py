"""Request-scoped dependencies shared by routes.

The dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in
the thread pool, and a hop to a worker thread and back costs the event loop more than
reading an attribute (issue 16). Work that blocks (database, Redis, envelopes) stays in
plain functions that the routes send to the pool themselves. Code that is not a dependency
reads the runtime and the engine with :func:`runtime_of` and :func:`engine_of`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from cardvault.services.signin.engine import Engine
from cardvault.services.signin.errors import SessionInvalid
from cardvault.services.system.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    rt = request.app.state.runtime
    assert isinstance(rt, Runtime)
    return rt


def engine_of(request: Request) -> Engine:
    eng = request.app.state.engine
    assert isinstance(eng, Engine)
    return eng


async def runtime(request: Request) -> Runtime:
    """FastAPI dependency: the service's runtime (on the event loop, no thread hop)."""
    return runtime_of(request)


async def engine(request: Request) -> Engine:
    """FastAPI dependency: the sign-in engine (on the event loop, no thread hop)."""
    return engine_of(request)


async def bearer_token(authorization: Annotated[str | None, Header()] = None) -> str:
    """The card session token from ``Authorization: Bearer …``."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
        raise SessionInvalid("Sign in first: this needs a card session.")
    return token.strip()


#: the route parameters these dependencies fill, declared once
RuntimeDep = Annotated[Runtime, Depends(runtime)]
EngineDep = Annotated[Engine, Depends(engine)]
BearerToken = Annotated[str, Depends(bearer_token)]
