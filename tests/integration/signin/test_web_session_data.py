"""A web session's page state under concurrent requests, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from cardvault.errors import InvalidInput
from cardvault.services.signin import web_sessions
from cardvault.services.signin.web_sessions import MAX_DATA_KEYS, WebSessionView
from cardvault.services.system.runtime import Runtime


def _stored(rt: Runtime, view: WebSessionView) -> dict[str, object]:
    again = web_sessions.load(rt, view.area, view.token)
    assert again is not None
    return dict(again.data)


def test_two_concurrent_requests_updating_different_keys_keep_both(rt: Runtime) -> None:
    view = web_sessions.start(rt, "portal", client_address=None)
    view = web_sessions.update_data(rt, view, kept="from before")
    # both requests loaded the session before either wrote: each holds the same old copy
    first, second = (web_sessions.load(rt, "portal", view.token) for _ in range(2))
    assert first is not None
    assert second is not None
    barrier = threading.Barrier(2)

    def update(request: WebSessionView, key: str) -> None:
        barrier.wait()
        web_sessions.update_data(rt, request, **{key: key.upper()})

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(update, (first, second), ("page", "poll")))
    assert _stored(rt, view) == {"kept": "from before", "page": "PAGE", "poll": "POLL"}


def test_a_stale_view_removing_its_key_leaves_keys_written_since(rt: Runtime) -> None:
    view = web_sessions.start(rt, "portal", client_address=None)
    stale = web_sessions.update_data(rt, view, notice="saved")
    web_sessions.update_data(rt, view, login_kind="email")
    returned = web_sessions.update_data(rt, stale, notice=None)
    assert returned.data == {"login_kind": "email"}
    assert _stored(rt, view) == {"login_kind": "email"}


def test_too_many_keys_counted_on_the_stored_data_are_refused_and_nothing_is_written(
    rt: Runtime,
) -> None:
    view = web_sessions.start(rt, "portal", client_address=None)
    full = {f"k{i}": i for i in range(MAX_DATA_KEYS)}
    web_sessions.update_data(rt, view, **full)
    with pytest.raises(InvalidInput, match="Too much page state"):
        web_sessions.update_data(rt, view, one_more=1)  # the view's own copy is empty
    assert _stored(rt, view) == full
