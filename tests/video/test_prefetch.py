"""The background producer of the analysis pipeline: order, errors and early stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from faceaffect.video.prefetch import prefetched


def test_items_come_in_order_and_the_work_runs_on_another_thread() -> None:
    threads: set[str] = set()

    def produce() -> Iterator[int]:
        for item in range(50):
            threads.add(threading.current_thread().name)
            yield item

    assert list(prefetched(produce(), depth=3)) == list(range(50))
    assert threads == {"faceaffect-prefetch"}


def test_an_error_of_the_producer_reaches_the_consumer_after_the_items_before_it() -> None:
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad frame")

    seen = []
    with pytest.raises(ValueError, match="bad frame"):
        for item in prefetched(produce()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_stops_and_closes_the_producer() -> None:
    produced = []
    closed = threading.Event()

    def produce() -> Iterator[int]:
        try:
            for item in range(1000):
                produced.append(item)
                yield item
        finally:
            closed.set()

    items = prefetched(produce(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    assert closed.wait(5.0)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count < 10  # it never ran far ahead, and it stopped
