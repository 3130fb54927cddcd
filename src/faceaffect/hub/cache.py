"""Download published weight files once, verify them, and keep them in a local cache.

>>> from faceaffect.hub.registry import get_config
>>> path = fetch(get_config("enet_b0_8_va_mtl").weights)  # doctest: +SKIP

The cache lives in ``$FACEAFFECT_HOME`` (default ``~/.cache/faceaffect``), one file per source under
``weights/<digest prefix>/<file name>``. Offline mode (``offline=True`` or ``FACEAFFECT_OFFLINE=1``) never
touches the network. Every file is verified by ``sha256`` when the source has one, else by its git blob id,
after a download and each time a cached copy is used. A download never brings more than the expected size
(the source's ``size``, else the server's Content-Length, at most ``max_download_bytes``: see
:mod:`faceaffect.core.limits`), so an endless response cannot fill the disk.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from faceaffect.core.errors import (
    ChecksumMismatchError,
    DownloadTooLargeError,
    HTTPDownloadError,
    NetworkError,
    WeightsError,
    WeightsNotCachedError,
)
from faceaffect.core.io import atomic_path
from faceaffect.core.limits import current_limits, env_name
from faceaffect.core.progress import Progress
from faceaffect.hub.registry import WeightSource

"""``progress(done_bytes, total_bytes)``; ``total_bytes`` is 0 when the server does not announce a size."""

_CHUNK = 1 << 20
_TIMEOUT_S = 60.0
_TRUE = {"1", "true", "yes", "on"}


def default_cache_dir() -> Path:
    """``$FACEAFFECT_HOME`` when set, else ``~/.cache/faceaffect``."""
    home = os.environ.get("FACEAFFECT_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "faceaffect"


def is_offline(offline: bool | None = None) -> bool:
    """An explicit ``offline`` wins; ``None`` reads ``FACEAFFECT_OFFLINE`` (1/true/yes/on)."""
    if offline is not None:
        return offline
    return os.environ.get("FACEAFFECT_OFFLINE", "").strip().lower() in _TRUE


def hash_file(path: str | Path, kind: str = "sha256") -> str:
    """Hex digest of a file: ``kind="sha256"``, or ``"git-sha1"``: its git blob id (``git hash-object``)."""
    path = Path(path)
    if kind == "sha256":
        digest = hashlib.sha256()
    elif kind == "git-sha1":
        digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    else:
        raise ValueError(f"unknown hash kind {kind!r}; use 'sha256' or 'git-sha1'")
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """The sha256 hex digest of a file."""
    return hash_file(path, "sha256")


def git_sha1_file(path: str | Path) -> str:
    """The git blob id of a file: sha1 over ``b"blob <size>\\0"`` followed by its content."""
    return hash_file(path, "git-sha1")


def _expected(source: WeightSource) -> tuple[str, str] | None:
    if source.sha256:
        return "sha256", source.sha256.lower()
    if source.git_sha1:
        return "git-sha1", source.git_sha1.lower()
    return None


def cache_path(source: WeightSource, cache_dir: str | Path | None = None) -> Path:
    """Where ``fetch`` keeps (or expects, for a manual copy) the file of ``source``."""
    expected = _expected(source)
    key = expected[1][:16] if expected else hashlib.sha256(source.url.encode()).hexdigest()[:16]
    return Path(cache_dir or default_cache_dir()).expanduser() / "weights" / key / source.filename


def verify(path: Path, source: WeightSource) -> None:
    """Raise ChecksumMismatchError unless ``path`` has the digest ``source`` promises (none: accepted)."""
    expected = _expected(source)
    if expected is None:
        return
    kind, want = expected
    got = hash_file(path, kind)
    if got != want:
        raise ChecksumMismatchError(
            f"{source.filename}: {kind} mismatch, expected {want}, got {got} ({path})"
        )


PACKAGE_SCHEME = "package:"


def packaged_file(source: WeightSource) -> Path:
    """The verified path of a file shipped in the package, named ``package:<path below src/faceaffect>``."""
    package = Path(__file__).resolve().parents[1]
    path = (package / source.url.removeprefix(PACKAGE_SCHEME)).resolve()
    if not path.is_relative_to(package):
        raise WeightsError(f"{source.url}: names a file outside the faceaffect package")
    if not path.is_file():
        raise WeightsNotCachedError(f"{source.url}: not in this installation of faceaffect ({path})")
    verify(path, source)
    return path


def fetch(
    source: WeightSource,
    *,
    cache_dir: str | Path | None = None,
    offline: bool | None = None,
    progress: Progress | None = None,
) -> Path:
    """The local path of a verified copy of ``source``, downloading it into the cache when needed.

    A cached copy that fails verification is deleted and downloaded again (offline: a clear error).
    A ``package:`` URL names a file shipped inside the faceaffect package (the embedded default model):
    it is verified in place, never copied or downloaded.
    """
    if source.url.startswith(PACKAGE_SCHEME):
        return packaged_file(source)
    target = cache_path(source, cache_dir)
    if target.is_file():
        try:
            verify(target, source)
            return target
        except ChecksumMismatchError as error:
            if is_offline(offline):
                raise ChecksumMismatchError(
                    f"offline and the cached copy is corrupt: {error}; replace it with {source.url}"
                ) from None
            target.unlink()
    if is_offline(offline):
        raise WeightsNotCachedError(
            f"offline and {source.filename} is not cached; download {source.url} and put it at {target}"
        )
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            _download(source, out, progress)
        verify(tmp, source)
    return target


def _failed(source: WeightSource, error: BaseException) -> NetworkError:
    reason = getattr(error, "reason", None) or error
    return NetworkError(f"downloading {source.filename} from {source.url} failed: {reason}")


def _expected_size(source: WeightSource, announced: int | None, folder: Path) -> int:
    """The most bytes a download may bring: the registry's size, else the server's Content-Length, never
    above ``max_download_bytes``; refused before the transfer when they disagree or the disk lacks room."""
    limit = current_limits().max_download_bytes
    if source.size is not None and announced is not None and announced != source.size:
        raise DownloadTooLargeError(
            f"{source.url} announces {announced} bytes, but {source.filename} has {source.size}"
        )
    expected = source.size or announced
    if expected is not None and expected > limit and source.size is None:
        raise DownloadTooLargeError(
            f"{source.url} announces {expected} bytes, more than the download limit of {limit}; raise it "
            f"with {env_name('max_download_bytes')}"
        )
    free = shutil.disk_usage(folder).free
    if expected is not None and expected > free:
        raise DownloadTooLargeError(f"{source.filename} needs {expected} bytes, {folder} has {free} free")
    return expected or limit


def _download(source: WeightSource, out: BinaryIO, progress: Progress | None) -> None:
    """Stream ``source`` into ``out``; a transfer longer than expected (an endless response included) is
    cut off at the expected size."""

    request = urllib.request.Request(source.url, headers={"User-Agent": "faceaffect"})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        raise HTTPDownloadError(
            f"downloading {source.filename} failed: HTTP {error.code} {error.reason} from {source.url}"
        ) from None
    except (OSError, http.client.HTTPException) as error:
        raise _failed(source, error) from None
    with response:
        length = response.headers.get("Content-Length", "")
        announced = int(length) if length.isdigit() else None
        most = _expected_size(source, announced, Path(out.name).parent)
        total = source.size or announced
        done = 0
        while True:
            if progress is not None:
                progress(done, total or 0)
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as error:
                raise _failed(source, error) from None
            if not chunk:
                break
            done += len(chunk)
            if done > most:
                raise DownloadTooLargeError(
                    f"{source.url} sent more than the expected {most} bytes; stopped "
                    + ("" if total else f"(raise the limit with {env_name('max_download_bytes')})")
                )
            out.write(chunk)
    if total and done != total:
        raise _failed(source, ConnectionError(f"got {done} of {total} bytes"))
