"""Running a command against a real full disk: a tiny tmpfs mounted in a private mount namespace
(``unshare``), so nothing outside the command sees it and it disappears with the command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from sample_data import unavailable

_SCRIPT = (
    'mount -t tmpfs -o size="$0" tmpfs "$1" || exit 99; disk="$1"; listing="$2"; shift 2; '
    '"$@"; code=$?; ls -A "$disk" > "$listing"; exit $code'
)


def on_small_disk(
    disk: Path, command: list[str], size: str = "64k", **run: object
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``command`` with a ``size`` tmpfs mounted at the folder ``disk``; returns the finished process
    and the names left on the disk afterwards. Skips (or fails, strictly) where no tmpfs can be mounted."""
    if shutil.which("unshare") is None:
        unavailable("unshare (util-linux) is needed to mount a private tmpfs")
    disk.mkdir(parents=True, exist_ok=True)
    listing = disk.parent / f"{disk.name}.listing"
    argv = ["unshare", "-rm", "sh", "-c", _SCRIPT, size, str(disk), str(listing), *command]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **run)  # type: ignore[call-overload]
    if done.returncode == 99 or not listing.exists():
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    return done, listing.read_text().split()
