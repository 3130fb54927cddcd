"""The inference lane: one thread, a bounded queue, image requests run between the frames of a job."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

import pytest

from faceaffect.serve.errors import Busy
from faceaffect.serve.lane import InferenceLane


class Frames:
    """A job of ``count`` frames that records what ran when, and waits at ``pause`` until released."""

    def __init__(self, log: list[str], count: int, pause: int | None = None) -> None:
        self.log, self.count, self.pause = log, count, pause
        self.reached, self.release = threading.Event(), threading.Event()
        self.finished = threading.Event()

    def run(self, between: Callable[[], bool]) -> None:
        for index in range(self.count):
            if index == self.pause:
                self.reached.set()
                assert self.release.wait(10)
            self.log.append(f"frame {index}")
            if not between():
                self.log.append("stopped")
                break
        self.finished.set()


@pytest.fixture
def lane() -> InferenceLane:
    lane = InferenceLane(capacity=3)
    yield lane
    lane.close()


def test_quick_work_runs_between_two_frames_of_a_job(lane: InferenceLane) -> None:
    log: list[str] = []
    job = Frames(log, 4, pause=2)
    with lane.reserve() as slot:
        slot.add(job)
    assert job.reached.wait(10)
    with lane.reserve() as slot:
        answer = slot.run(lambda: log.append("image") or 42)
    job.release.set()
    assert answer.result(10) == 42 and job.finished.wait(10)
    assert log == ["frame 0", "frame 1", "frame 2", "image", "frame 3"]


def test_a_job_and_image_requests_share_the_lane_time(lane: InferenceLane) -> None:
    log: list[str] = []
    frames = 40

    class SlowFrames(Frames):
        def run(self, between: Callable[[], bool]) -> None:
            for index in range(frames):
                time.sleep(0.01)
                log.append(f"frame {index}")
                between()
            self.finished.set()

    job = SlowFrames(log, frames)
    with lane.reserve() as slot:
        slot.add(job)
    while not job.finished.is_set():  # an image request always waiting, each taking 50 ms
        with lane.reserve() as slot:
            slot.run(lambda: time.sleep(0.05) or log.append("image")).result(10)
    runs = [len(list(group)) for is_frame, group in itertools.groupby(log, lambda e: e.startswith("frame"))
            if is_frame]  # fmt: skip
    assert len(runs) > 2 and min(runs[1:-1]) >= 2  # the job gets its turn between two images


def test_a_job_starts_while_image_requests_keep_coming(lane: InferenceLane) -> None:
    stop = threading.Event()

    def image() -> None:  # each request brings the next: one is always waiting
        if not stop.is_set():
            with lane.reserve() as slot:
                slot.run(image)
        time.sleep(0.01)

    with lane.reserve() as slot:
        slot.run(image)
    job = Frames([], 3)
    try:
        with lane.reserve() as slot:
            slot.add(job)
        assert job.finished.wait(10)
    finally:
        stop.set()


def test_the_queue_is_bounded_and_slots_come_back(lane: InferenceLane) -> None:
    job = Frames([], 2, pause=0)
    with lane.reserve() as slot:
        slot.add(job)  # running: holds a slot until done
    with lane.reserve(), lane.reserve():  # reserved, never used: given back at the end of the block
        assert lane.admitted == 3
        with pytest.raises(Busy, match="queue is full"), lane.reserve():
            pass
        with lane.reserve(force=True):  # jobs taken up again after a restart are always admitted
            assert lane.admitted == 4
    assert lane.admitted == 1
    job.release.set()
    assert job.finished.wait(10)
    with lane.reserve() as slot:
        slot.run(lambda: None).result(10)
    assert lane.admitted == 0


def test_errors_come_back_to_the_request_and_the_lane_goes_on(lane: InferenceLane) -> None:
    with lane.reserve() as slot:
        failing = slot.run(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(10)
    with lane.reserve() as slot:
        assert slot.run(lambda: "still here").result(10) == "still here"


def test_a_waiting_job_can_be_discarded(lane: InferenceLane) -> None:
    log: list[str] = []
    first, second = Frames(log, 1, pause=0), Frames(log, 1)
    for job in (first, second):
        with lane.reserve() as slot:
            slot.add(job)
    assert first.reached.wait(10)
    assert not lane.discard(first)  # running: it stops by itself
    assert lane.discard(second) and lane.admitted == 1
    first.release.set()
    assert first.finished.wait(10) and not second.finished.is_set() and log == ["frame 0"]


def test_closing_stops_the_running_job_at_its_next_frame() -> None:
    lane = InferenceLane(capacity=2)
    log: list[str] = []
    job = Frames(log, 100, pause=1)
    with lane.reserve() as slot:
        slot.add(job)
    assert job.reached.wait(10)
    closer = threading.Thread(target=lane.close)
    closer.start()
    while lane.alive:  # closed: the job's next between() says stop
        time.sleep(0.01)
    job.release.set()
    closer.join(10)
    assert log == ["frame 0", "frame 1", "stopped"] and not lane.alive
    with pytest.raises(Busy, match="shutting down"), lane.reserve():
        pass
