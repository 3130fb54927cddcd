"""SIGINT and SIGTERM become Interrupted, never inside a deferred block; the handlers come back after."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from faceaffect.core.signals import Interrupted, deferred_interrupts, stop_on_signals


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_becomes_interrupted_with_the_shell_exit_code(signum: int, code: int) -> None:
    before = signal.getsignal(signum)
    with pytest.raises(Interrupted) as stop, stop_on_signals():
        os.kill(os.getpid(), signum)
        for _ in range(10**8):  # the handler runs between two bytecodes
            pass
    assert stop.value.signum == signum and stop.value.exit_code == code
    assert isinstance(stop.value, KeyboardInterrupt) and signal.getsignal(signum) is before


def test_a_deferred_block_finishes_before_the_signal_is_raised() -> None:
    steps = []
    with pytest.raises(Interrupted), stop_on_signals():
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGTERM)
            for step in range(3):
                steps.append(step)
            with deferred_interrupts():  # nested blocks: raised when the outer one ends
                steps.append("inner")
            steps.append("end")
        steps.append("after")  # never reached
    assert steps == [0, 1, 2, "inner", "end"]


def test_off_the_main_thread_nothing_is_installed() -> None:
    seen = []

    def work() -> None:
        with stop_on_signals():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [signal.getsignal(signal.SIGTERM)]
