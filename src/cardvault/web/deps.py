"""Request-scoped dependencies shared by routes."""

from __future__ import annotations

from fastapi import Request

from cardvault.services.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt = request.app.state.runtime
    assert isinstance(rt, Runtime)
    return rt
