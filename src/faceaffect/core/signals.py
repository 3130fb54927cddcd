"""Stopping long work cleanly: Ctrl-C (SIGINT) and SIGTERM become an :class:`Interrupted` exception that the
work catches to keep what is done, and the writing of results is never cut in half.

>>> with stop_on_signals():  # doctest: +SKIP
...     for item in work:
...         result = compute(item)  # a signal here raises Interrupted at once
...         with deferred_interrupts():
...             write(result)  # a signal here raises Interrupted when the write is done

Without :func:`stop_on_signals` (a library caller's own process), Ctrl-C stays Python's KeyboardInterrupt,
of which :class:`Interrupted` is a kind, and SIGTERM keeps its default (the process ends at once).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

_deferring = 0  # depth of deferred_interrupts() blocks (signal handlers run on the main thread only)
_pending: int | None = None  # a signal that arrived inside one


class Interrupted(KeyboardInterrupt):
    """The work was stopped by a signal; ``exit_code`` is the shell's convention (130 SIGINT, 143 SIGTERM)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _raise_or_defer(signum: int, frame: FrameType | None) -> None:
    global _pending
    if _deferring:
        _pending = signum
        return
    raise Interrupted(signum)


@contextmanager
def stop_on_signals(signums: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Within the block, ``signums`` raise :class:`Interrupted` in the main thread (deferred to the end of a
    :func:`deferred_interrupts` block); the previous handlers come back after it. Elsewhere than on the main
    thread (where Python cannot install handlers) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_or_defer) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """A block that a signal handled by :func:`stop_on_signals` does not cut: the signal raises
    :class:`Interrupted` when the block ends."""
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _pending is not None:
            signum, _pending = _pending, None
            raise Interrupted(signum)
