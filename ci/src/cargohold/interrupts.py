"""Interrupts: SIGTERM stops a run the way Ctrl-C does, and a section no signal cuts in half.

Python's default SIGTERM ends the process on the spot: no ``finally`` runs, the
Dagger session is not closed, and a release may stop between two tag writes.
``install()`` makes SIGTERM take the SIGINT path instead (inside ``anyio.run``
that cancels the main task, so every ``async with`` closes), and the exit code
says which signal it was (130 or 143). ``deferred()`` holds both signals until a
short critical section is done (moving a release's tags); a second signal
stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final, NoReturn, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

log = logging.getLogger(__name__)
T = TypeVar("T")

# typer returns this exit code for a KeyboardInterrupt (which SIGTERM becomes here); cargohold never uses it.
TYPER_INTERRUPTED: Final = 130
_received: list[int] = []


def install() -> None:
    """Route SIGTERM through the SIGINT handler in force (from the main thread; elsewhere nothing to do)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_term)


def _on_term(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
        return
    raise KeyboardInterrupt


def exit_code() -> int:
    """128 + the signal that stopped the run (SIGINT when none was recorded)."""
    return 128 + (_received[-1] if _received else signal.SIGINT)


def signal_name() -> str:
    """The name of the signal that stopped the run."""
    return signal.Signals(exit_code() - 128).name


@contextlib.contextmanager
def deferred(what: str) -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then stop the run; a second signal stops it at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _: FrameType | None) -> None:
        _received.append(signum)
        if pending:
            raise KeyboardInterrupt
        pending.append(signum)
        log.warning("%s: finishing %s first (signal again to stop at once)", signal.Signals(signum).name, what)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if pending:
        raise KeyboardInterrupt


async def in_thread(work: Callable[[], T]) -> T:
    """``work()`` in a daemon thread; a cancelled wait (Ctrl-C, SIGTERM) returns at once.

    ``anyio.to_thread`` waits for its thread even when cancelled, and the process
    waits for its threads at exit: a registry call stalled for minutes would hold
    an interrupted run that long. An abandoned daemon thread dies with the process.
    """
    done, token = anyio.Event(), anyio.lowlevel.current_token()
    outcome: list[Callable[[], T]] = []

    def run() -> None:
        try:
            result = work()
            outcome.append(lambda: result)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting task, which raises it
            error = e
            outcome.append(lambda: _raise(error))
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            anyio.from_thread.run_sync(done.set, token=token)

    threading.Thread(target=run, name=f"cargohold {getattr(work, '__name__', 'registry call')}", daemon=True).start()
    await done.wait()
    return outcome[0]()


def _raise(error: BaseException) -> NoReturn:
    raise error
