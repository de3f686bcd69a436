"""SIGTERM takes the SIGINT path, and a deferred section is never cut by a signal (real signals, this process)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import anyio
import pytest

from cargohold import interrupts


@pytest.fixture(autouse=True)
def _restore_handlers() -> Iterator[None]:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


def test_sigterm_raises_keyboard_interrupt_and_the_exit_code_says_sigterm() -> None:
    interrupts.install()
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
    assert interrupts.exit_code() == 143
    assert interrupts.signal_name() == "SIGTERM"


def test_a_deferred_section_finishes_before_the_signal_stops_the_run() -> None:
    interrupts.install()
    done: list[str] = []

    def section() -> None:
        with interrupts.deferred("a test section"):
            os.kill(os.getpid(), signal.SIGINT)
            done.append("after the signal")

    with pytest.raises(KeyboardInterrupt):
        section()
    assert done == ["after the signal"]
    assert interrupts.exit_code() == 130


def test_a_second_signal_stops_a_deferred_section_at_once() -> None:
    done: list[str] = []

    def section() -> None:
        with interrupts.deferred("a test section"):
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("not reached")

    with pytest.raises(KeyboardInterrupt):
        section()
    assert done == []


def test_a_thread_call_returns_its_result_and_raises_its_error() -> None:
    assert anyio.run(interrupts.in_thread, lambda: 42) == 42

    def fails() -> int:
        msg = "registry said no"
        raise ValueError(msg)

    with pytest.raises(ValueError, match="registry said no"):
        anyio.run(interrupts.in_thread, fails)


def test_a_cancelled_wait_for_a_stalled_thread_call_returns_at_once() -> None:
    release = threading.Event()

    async def main() -> float:
        began = time.monotonic()
        with anyio.move_on_after(0.2):
            await interrupts.in_thread(lambda: release.wait(30))
        return time.monotonic() - began

    try:
        assert anyio.run(main) < 5, "the cancelled wait held on to the stalled call"
    finally:
        release.set()
