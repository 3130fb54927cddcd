"""The one inference lane of a server: a single thread runs every image request and every job, in turn,
so the models are shared without locks and requests never corrupt each other; one bounded queue admits them.

An image request is one quick task. A job is a long task that is handed ``between``: it calls it after each
frame, and the image requests that came meanwhile run there, so a long video never holds them up for more
than a few frames. When both compete they share the lane's time equally: after image requests that took
t seconds, the job runs for t seconds before the next ones. Jobs run one after another, in order (one video
decoded at a time: memory stays flat); ``between`` returns False once the lane is closing, and the job stops
there.

>>> lane = InferenceLane(capacity=4)
>>> with lane.reserve() as slot:
...     future = slot.run(lambda: 6 * 7)
>>> future.result(), lane.close()
(42, None)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from faceaffect.serve.errors import Busy

T = TypeVar("T")
log = logging.getLogger("faceaffect.serve")
Quick = tuple[Future[Any], Callable[[], Any]]


class LongTask(Protocol):
    """Long work on the lane, which calls ``between()`` after each unit (a frame) and stops when it says
    False (the lane is closing)."""

    def run(self, between: Callable[[], bool]) -> None: ...


class Slot:
    """A place in the queue, reserved before an upload is read; it passes to the task it is used for."""

    def __init__(self, lane: InferenceLane) -> None:
        self.lane = lane
        self.used = False

    def run(self, work: Callable[[], T]) -> Future[T]:
        """Run ``work`` on the lane soon (within a frame of the running job); returns its future."""
        future: Future[T] = Future()
        self.lane._add(self, quick=(future, work))
        return future

    def add(self, task: LongTask) -> None:
        """Run ``task`` on the lane after the jobs already queued."""
        self.lane._add(self, long=task)


class InferenceLane:
    """One worker thread, at most ``capacity`` tasks admitted at once (queued or running)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.admitted = 0
        self._quick: deque[Quick] = deque()
        self._long: deque[LongTask] = deque()
        self._changed = threading.Condition()
        self._closed = False
        self._job_turn_ends = 0.0  # the running job's turn: quick tasks wait until then
        self._thread = threading.Thread(target=self._loop, name="faceaffect-lane", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    @contextmanager
    def reserve(self, *, force: bool = False) -> Iterator[Slot]:
        """A slot, or :class:`Busy` when ``capacity`` tasks are admitted (``force``: admit anyway, for jobs
        taken up again after a restart). A slot not used by the end of the block is given back."""
        with self._changed:
            if self._closed:
                raise Busy("the server is shutting down")
            if self.admitted >= self.capacity and not force:
                raise Busy(f"the queue is full ({self.capacity} requests and jobs); retry later")
            self.admitted += 1
        slot = Slot(self)
        try:
            yield slot
        finally:
            if not slot.used:
                self._release()

    def discard(self, task: LongTask) -> bool:
        """Take a task that has not started off the queue; False when it is not waiting there."""
        with self._changed:
            if task not in self._long:
                return False
            self._long.remove(task)
        self._release()
        return True

    def close(self) -> None:
        """Stop: the running job stops at its next frame, waiting work is refused (jobs stay on disk)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()
        for future, _ in self._quick:
            future.set_exception(Busy("the server is shutting down"))

    def _add(self, slot: Slot, *, quick: Quick | None = None, long: LongTask | None = None) -> None:
        if slot.used:
            raise RuntimeError("a slot is used once")
        with self._changed:
            if self._closed:
                raise Busy("the server is shutting down")
            slot.used = True
            if quick is not None:
                self._quick.append(quick)
            if long is not None:
                self._long.append(long)
            self._changed.notify()

    def _release(self) -> None:
        with self._changed:
            self.admitted -= 1

    def _loop(self) -> None:
        while True:
            with self._changed:
                while not (self._quick or self._long or self._closed):
                    self._changed.wait()
                if self._closed:
                    return
                task = self._long.popleft() if self._long else None
            took = self._run_quick()  # those waiting now, then the next job: image requests never keep it out
            if task is None:
                continue
            self._job_turn_ends = time.monotonic() + took
            try:
                task.run(self._between)
            except Exception:  # a task reports its own failures: this is a bug, and the lane must go on
                log.exception("a job failed")
            finally:
                self._release()

    def _between(self) -> bool:
        """Between two frames of a job: the quick tasks waiting, unless the job has not yet had as much time
        as they took last; False once the lane is closing."""
        if self._quick and time.monotonic() >= self._job_turn_ends:
            took = self._run_quick()
            self._job_turn_ends = time.monotonic() + took
        return not self._closed

    def _run_quick(self) -> float:
        """Run the quick tasks waiting now; the seconds they took."""
        start = time.monotonic()
        with self._changed:
            quick = list(self._quick)
            self._quick.clear()
        for future, work in quick:
            if not future.set_running_or_notify_cancel():  # the request went away
                self._release()
                continue
            try:
                result = work()
            except BaseException as error:  # handed to the request, which answers with it
                self._release()
                future.set_exception(error)
            else:
                self._release()  # before the answer goes out: the client may ask again at once
                future.set_result(result)
        return time.monotonic() - start
