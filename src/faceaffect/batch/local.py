"""The local engine: worker processes on this machine, each loading the models once and running one input at
a time, so that a worker that dies (a crash in a decoder, the out-of-memory killer) costs only the input it
was running, which the driver knows exactly and runs again.

Workers are started with ``spawn`` (no state copied from the driver), ignore Ctrl-C (the driver ends them)
and end by themselves when the driver is gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from faceaffect.batch.pool import Finished
from faceaffect.batch.worker import Worker
from faceaffect.core.errors import FaceaffectError

STOP_SECONDS = 5.0


@dataclass(eq=False)
class _Slot:
    process: BaseProcess
    connection: Connection
    task: dict[str, Any] | None = None


class LocalPool:
    """``size`` worker processes for ``job`` (a :class:`~faceaffect.batch.worker.Job` as a dict); a
    FaceaffectError when their models cannot be loaded."""

    def __init__(self, job: dict[str, Any], size: int) -> None:
        self.job = job
        self.context = multiprocessing.get_context("spawn")
        self.slots: list[_Slot] = []
        try:
            for _ in range(size):
                self.slots.append(self._start())
            for slot in self.slots:
                _check_ready(slot)
        except BaseException:
            self.close()
            raise

    @property
    def size(self) -> int:
        return len(self.slots)

    @property
    def idle(self) -> int:
        return sum(slot.task is None for slot in self.slots)

    def submit(self, task: dict[str, Any]) -> None:
        """Give ``task`` to an idle worker (there must be one)."""
        slot = next(slot for slot in self.slots if slot.task is None)
        slot.task = task
        with contextlib.suppress(OSError):  # it died while idle: next() sees its end, gives the task back
            slot.connection.send(task)

    def next(self) -> Finished:
        """The next task to finish (or whose worker died); a dead worker is replaced."""
        while True:
            busy = {slot.connection: slot for slot in self.slots if slot.task is not None}
            busy.update({slot.process.sentinel: slot for slot in busy.values()})
            for slot in dict.fromkeys(busy[ready] for ready in wait(list(busy))):
                finished = self._collect(slot)
                if finished is not None:
                    return finished

    def _collect(self, slot: _Slot) -> Finished | None:
        task = slot.task
        assert task is not None
        try:
            while slot.connection.poll():
                message = slot.connection.recv()
                if message[0] == "done":
                    slot.task = None
                    return Finished(task, message[1])
        except (EOFError, OSError):
            pass
        if slot.process.is_alive():
            return None
        slot.process.join()
        reason = _ending(slot.process.exitcode)
        self.slots[self.slots.index(slot)] = self._start()
        return Finished(task, None, reason)

    def _start(self) -> _Slot:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=serve, args=(theirs, self.job, os.getpid()), name="faceaffect-batch-worker", daemon=True
        )
        process.start()
        theirs.close()
        return _Slot(process, ours)

    def close(self) -> None:
        """End every worker: idle ones are asked to stop, busy ones (an interrupted run) are terminated."""
        for slot in self.slots:
            with contextlib.suppress(OSError):
                slot.connection.send(None) if slot.task is None else slot.process.terminate()
        deadline = time.monotonic() + STOP_SECONDS
        for slot in self.slots:
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            slot.connection.close()
        self.slots = []

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _check_ready(slot: _Slot) -> None:
    """Wait until a new worker has loaded its models; a FaceaffectError if it could not."""
    try:
        _, _, problem = slot.connection.recv()
    except (EOFError, OSError):
        slot.process.join()
        raise FaceaffectError(
            f"a worker process ended while loading the models ({_ending(slot.process.exitcode)})"
        ) from None
    if problem:
        raise FaceaffectError(problem)


def _ending(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def serve(connection: Connection, job: dict[str, Any], driver: int) -> None:
    """A worker process: load the models, say so, then run the tasks that come until told to stop.

    SIGTERM (the driver's, or our own when the driver is gone) ends it as an exception would: a file being
    written is removed, not left half-written beside the outputs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the driver decides
    signal.signal(signal.SIGTERM, _exit_now)
    threading.Thread(target=_end_with, args=(driver,), daemon=True, name="faceaffect-driver-watch").start()
    worker = Worker(job)
    connection.send(("ready", *worker.ready()))
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        connection.send(("done", worker.run(task)))


def _exit_now(*_: object) -> None:
    raise SystemExit(1)


def _end_with(driver: int) -> None:
    """End this worker once the driver's process is gone (killed): nobody would record its work."""
    while os.getppid() == driver:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_SECONDS)
    os._exit(1)  # still here: stuck in native code
