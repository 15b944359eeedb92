"""Admission to key derivations: at most ``slots`` run, ``queue`` more wait, the rest are
refused at once with Busy (429 + Retry-After), and a refusal never takes a place."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack

import pytest

from cardvault.services.signin.errors import Busy
from cardvault.services.signin.kdf_gate import KdfGate


def test_beyond_slots_and_queue_a_request_is_refused_at_once() -> None:
    gate = KdfGate(slots=2, queue=1)
    with ExitStack() as held:
        for _ in range(3):
            held.enter_context(gate.admitted())
        started = time.monotonic()
        with pytest.raises(Busy) as refused, gate.admitted():
            pass
        assert time.monotonic() - started < 0.5
        assert refused.value.retry_after == 1
    with gate.admitted():  # every place was given back, the refused one took none
        pass


def test_the_defaults_follow_the_cores() -> None:
    gate = KdfGate()
    assert gate.slots >= 1
    assert gate.queue == 4 * gate.slots
    assert KdfGate(slots=3, queue=0).queue == 0


def test_no_more_than_slots_derivations_run_at_once() -> None:
    gate = KdfGate(slots=2, queue=10)
    lock = threading.Lock()
    running, most = 0, 0

    def derive() -> None:
        nonlocal running, most
        with gate.slot():
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.02)
            with lock:
                running -= 1

    threads = [threading.Thread(target=derive) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most == 2


def test_the_gate_reports_its_queue_its_waits_and_its_refusals() -> None:
    gate = KdfGate(slots=1, queue=1)
    waits: list[float] = []
    refused: list[bool] = []
    gate.observe(waited=waits.append, refused=lambda: refused.append(True))
    with gate.admitted():
        assert (gate.waiting(), gate.running_now()) == (1, 0)
        with gate.running():
            assert (gate.waiting(), gate.running_now()) == (0, 1)
            with gate.admitted():
                assert gate.waiting() == 1
                with pytest.raises(Busy), gate.admitted():
                    pass
    assert (gate.waiting(), gate.running_now()) == (0, 0)
    assert len(waits) == 1
    assert waits[0] >= 0
    assert refused == [True]
