"""Large blocks stay mapped (never holes in the heap) once the analysis starts: checked in fresh processes, as
glibc's threshold is process-wide, by asking glibc itself whether frame-sized blocks are served by mmap."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
from sample_data import unavailable


@pytest.fixture(autouse=True)
def _glibc() -> None:
    if platform.libc_ver()[0] != "glibc":
        unavailable("a setting of glibc's malloc, and this C library is not glibc")


PROBE = '''
import ctypes, sys

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]


class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


libc.mallinfo2.restype = Mallinfo2


def mapped(size=737_600, beyond=16):
    """Whether glibc serves blocks of ``size`` bytes (a 640x360 frame) by mmap. An 8 MiB mapped block is freed
    first (glibc's dynamic threshold then rises to 8 MiB); then as many blocks as the free heap could hold
    are allocated, and ``beyond`` more: those must be mapped (the IS_MMAPPED bit of their chunk header)."""
    libc.free(libc.malloc(8 << 20))
    blocks = [libc.malloc(size) for _ in range(libc.mallinfo2().fordblks // size + beyond)]
    count = sum(ctypes.c_size_t.from_address(block - 8).value & 2 for block in blocks) // 2
    for block in blocks:
        libc.free(block)
    return count >= beyond


print(mapped())
'''

SETTING = """
from faceaffect.video.memory import keep_large_blocks_mapped
print(keep_large_blocks_mapped(), mapped())
"""


def run_probe(then: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    result = subprocess.run([sys.executable, "-c", PROBE + then, *args], capture_output=True, text=True,
                            timeout=120, check=True, env={**os.environ, **(env or {})})  # fmt: skip
    return result.stdout.split()


def test_frame_sized_blocks_are_mapped_once_the_setting_is_made() -> None:
    assert run_probe(SETTING) == ["False", "True", "True"]  # glibc alone: from the heap; then mapped


def test_a_threshold_the_user_chose_is_left_alone() -> None:
    chosen = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20)}  # 1 MiB: a 737 KB block comes from the heap
    assert run_probe(SETTING, env=chosen) == ["False", "False", "False"]


def test_the_analyzer_makes_the_setting_before_its_frames(shared_data) -> None:
    analysis = """
from faceaffect.analysis import Analyzer
frames = list(Analyzer(max_frames=3).stream(sys.argv[1]))
print(len(frames), mapped())
"""
    video = shared_data / "videos" / "pyfeat_tests" / "single_face.mp4"
    assert run_probe(analysis, str(video)) == ["False", "3", "True"]
