"""Flat native memory over long streams of frames, where the C library is glibc (Linux).

Each analysed frame allocates and frees blocks of hundreds of kilobytes (PyAV's RGB frame, 737 KB at 640x360;
the detector's PIL copy of it, 922 KB; crops and batches), while the results kept for every face are small
blocks that live to the end. glibc serves a block of 128 KiB or more by mmap and unmaps it when freed, but
the first time such a block is freed it raises that threshold to the block's size (up to 32 MiB): from then
on frames come from the heap, and a small long-lived block placed in the hole a freed frame left keeps the
hole from taking the next frame. The heap then grows by 0.3-0.5 MB a frame (6 GB for 10 minutes of 640x360
video), whether the frames are decoded on a thread or not (when a thread's arena cannot grow, glibc serves
the thread from the main arena). :func:`keep_large_blocks_mapped` fixes the threshold at glibc's default,
so large blocks are always mapped and unmapped and never leave holes (for about 450 more page faults a
frame, about 1 ms of CPU time); a threshold the user set (``MALLOC_MMAP_THRESHOLD_`` or
``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...``) is left as it is.

>>> keep_large_blocks_mapped()  # doctest: +SKIP
True
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024  # glibc's default (DEFAULT_MMAP_THRESHOLD_MIN), before it adjusts it


@functools.cache
def keep_large_blocks_mapped() -> bool:
    """Serve blocks of 128 KiB or more by mmap for the rest of the process (glibc only; once per process).
    True when the setting was made; False elsewhere, and where the user chose a threshold themselves."""
    if platform.libc_ver()[0] != "glibc" or _user_threshold():
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def _user_threshold() -> bool:
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    return "MALLOC_MMAP_THRESHOLD_" in os.environ or "glibc.malloc.mmap_threshold" in tunables
