"""Run the front of a pipeline (decode, detect, track) on a background thread while the caller works on what
it already produced (recognition), so the two overlap: LiteRT, ONNX Runtime and PyAV release the GIL.

>>> list(prefetched(iter(range(5)), depth=2))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(items: Iterator[T], depth: int = 8) -> Iterator[T]:
    """The items of ``items``, produced up to ``depth`` ahead on a daemon thread. Errors of the producer are
    raised here, in the consumer; closing this generator early (``break``, an error) stops the producer."""
    buffer: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as error:  # handed to the consumer, which raises it
            offer(_Failure(error))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # the source's file or camera, on this thread that ran it
        offer(_DONE)

    worker = threading.Thread(target=produce, name="faceaffect-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5.0)
