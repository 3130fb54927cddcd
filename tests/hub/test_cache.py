"""Download, cache, verification and offline mode of faceaffect.hub.cache against a local HTTP server."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sample_data import unavailable
from small_disk import on_small_disk

from faceaffect.core.errors import FaceaffectError
from faceaffect.core.limits import raised_limits
from faceaffect.hub import (
    ChecksumMismatchError,
    DownloadTooLargeError,
    HTTPDownloadError,
    NetworkError,
    WeightsError,
    WeightsNotCachedError,
    cache_path,
    default_cache_dir,
    fetch,
    git_sha1_file,
    hash_file,
    sha256_file,
)
from faceaffect.hub.registry import WeightSource

CONTENT = b"published weights \x00\x01\x02" * 1000


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def source(server, path: str = "w/model.pt", data: bytes = CONTENT, size=None, **digest: str) -> WeightSource:
    server.files[path] = data
    if not digest:
        digest = {"git_sha1": git_sha1(data)}
    return WeightSource(url=server.url(path) + "?raw=true", format="hsemotion_pickle", size=size, **digest)


def cache_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file())


def test_download_is_verified_cached_and_reported(http_server, tmp_path):
    src = source(http_server)
    calls: list[tuple[int, int]] = []
    path = fetch(src, cache_dir=tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert path.read_bytes() == CONTENT
    assert path == cache_path(src, tmp_path) and path.name == "model.pt"
    assert calls[0] == (0, len(CONTENT)) and calls[-1] == (len(CONTENT), len(CONTENT))
    assert fetch(src, cache_dir=tmp_path) == path
    assert http_server.requests == ["w/model.pt"]  # the second fetch used the cache
    assert cache_files(tmp_path) == [path]  # no temporary file left behind


def test_sha256_takes_precedence_over_git_sha1(http_server, tmp_path):
    src = source(http_server, sha256=hashlib.sha256(CONTENT).hexdigest(), git_sha1="0" * 40)
    assert fetch(src, cache_dir=tmp_path).read_bytes() == CONTENT


@pytest.mark.parametrize("digest", ["sha256", "git_sha1"])
def test_corrupt_download_is_rejected_and_not_cached(http_server, tmp_path, digest):
    good = {"sha256": hashlib.sha256(CONTENT).hexdigest(), "git_sha1": git_sha1(CONTENT)}[digest]
    src = source(http_server, data=CONTENT[:-1] + b"!", **{digest: good})
    with pytest.raises(ChecksumMismatchError, match=f"expected {good}, got [0-9a-f]+"):
        fetch(src, cache_dir=tmp_path)
    assert cache_files(tmp_path) == []


def test_corrupt_cached_file_is_downloaded_again(http_server, tmp_path):
    src = source(http_server)
    path = fetch(src, cache_dir=tmp_path)
    path.write_bytes(b"truncated")
    assert fetch(src, cache_dir=tmp_path).read_bytes() == CONTENT
    assert len(http_server.requests) == 2


def test_corrupt_cached_file_offline_is_a_clear_error(http_server, tmp_path):
    src = source(http_server)
    fetch(src, cache_dir=tmp_path).write_bytes(b"truncated")
    with pytest.raises(ChecksumMismatchError, match="offline and the cached copy is corrupt"):
        fetch(src, cache_dir=tmp_path, offline=True)


def test_offline_without_cache_says_where_to_put_the_file(http_server, tmp_path):
    src = source(http_server)
    with pytest.raises(WeightsNotCachedError) as error:
        fetch(src, cache_dir=tmp_path, offline=True)
    message = str(error.value)
    assert "model.pt" in message and src.url in message and str(cache_path(src, tmp_path)) in message
    assert "\n" not in message
    assert http_server.requests == []


def test_offline_by_environment_uses_the_cache(http_server, tmp_path, monkeypatch):
    src = source(http_server)
    path = fetch(src, cache_dir=tmp_path)
    monkeypatch.setenv("FACEAFFECT_OFFLINE", "1")
    assert fetch(src, cache_dir=tmp_path) == path
    with pytest.raises(WeightsNotCachedError):
        fetch(source(http_server, "other.pt"), cache_dir=tmp_path)
    assert http_server.requests == ["w/model.pt"]


def test_manually_placed_file_is_used_offline(tmp_path):
    src = WeightSource(
        url="http://example.invalid/m.pt", format="hsemotion_pickle", git_sha1=git_sha1(CONTENT)
    )
    target = cache_path(src, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(CONTENT)
    assert fetch(src, cache_dir=tmp_path, offline=True) == target


def test_cache_dir_defaults_to_faceaffect_home(http_server, tmp_path, monkeypatch):
    monkeypatch.setenv("FACEAFFECT_HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home"
    assert fetch(source(http_server)).is_relative_to(tmp_path / "home")


def test_http_error(http_server, tmp_path):
    src = WeightSource(url=http_server.url("missing.pt"), format="hsemotion_pickle", git_sha1="0" * 40)
    with pytest.raises(HTTPDownloadError, match="HTTP 404"):
        fetch(src, cache_dir=tmp_path)
    assert cache_files(tmp_path) == []


def test_network_error(tmp_path):
    src = WeightSource(url="http://127.0.0.1:9/m.pt", format="hsemotion_pickle", git_sha1="0" * 40)
    with pytest.raises(NetworkError, match=r"m\.pt"):
        fetch(src, cache_dir=tmp_path)
    assert issubclass(NetworkError, WeightsError)


def test_hashes_match_hashlib_and_git(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(CONTENT)
    assert sha256_file(path) == hash_file(path) == hashlib.sha256(CONTENT).hexdigest()
    assert git_sha1_file(path) == hash_file(path, "git-sha1") == git_sha1(CONTENT)
    if shutil.which("git") is None:
        unavailable("git not installed")
    out = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    assert git_sha1_file(path) == out.stdout.strip()
    with pytest.raises(ValueError, match="unknown hash kind"):
        hash_file(path, "md5")


def test_an_endless_response_is_cut_off_at_the_download_limit(http_server, tmp_path):
    http_server.endless.add("w/endless.pt")
    src = WeightSource(url=http_server.url("w/endless.pt"), format="hsemotion_pickle", git_sha1="0" * 40)
    too_long = pytest.raises(DownloadTooLargeError, match=r"sent more than the expected 3145728 bytes")
    with raised_limits(max_download_bytes=3 << 20), too_long:
        fetch(src, cache_dir=tmp_path)
    assert cache_files(tmp_path) == []  # nothing of it stays on disk


def test_the_registrys_size_bounds_the_download(http_server, tmp_path):
    http_server.endless.add("w/endless.pt")
    src = WeightSource(
        url=http_server.url("w/endless.pt"), format="hsemotion_pickle", git_sha1="0" * 40, size=100_000
    )
    with pytest.raises(DownloadTooLargeError, match="more than the expected 100000 bytes"):
        fetch(src, cache_dir=tmp_path)
    sized = source(http_server, size=len(CONTENT) + 1)
    with pytest.raises(DownloadTooLargeError, match=f"announces {len(CONTENT)} bytes, but model.pt has"):
        fetch(sized, cache_dir=tmp_path)
    assert fetch(source(http_server, size=len(CONTENT)), cache_dir=tmp_path).read_bytes() == CONTENT


def test_an_announced_size_beyond_the_limit_is_refused_before_the_transfer(http_server, tmp_path):
    src = source(http_server)
    http_server.announced["w/model.pt"] = 10**12
    with pytest.raises(DownloadTooLargeError, match="announces 1000000000000 bytes, more than the download"):
        fetch(src, cache_dir=tmp_path)
    assert cache_files(tmp_path) == []


def test_sources_that_name_files_outside_the_package_or_the_web():
    with pytest.raises(FaceaffectError, match="outside the faceaffect package"):
        WeightSource(url="package:../../../../../../etc/hostname", format="onnx")
    with pytest.raises(FaceaffectError, match="neither http"):
        WeightSource(url="file:///etc/hostname", format="onnx")
    with pytest.raises(FaceaffectError, match="unknown weight format"):
        WeightSource(url="https://example.invalid/m.bin", format="pickle")
    with pytest.raises(FaceaffectError, match="sha256 must be 64 hex digits"):
        WeightSource(url="https://example.invalid/m.bin", format="onnx", sha256="abc")


def test_a_download_onto_a_full_disk_is_one_line_and_leaves_nothing(http_server, tmp_path):
    """Onto a 64 KB disk: a file that announces 840 KB is refused before the transfer; an endless one
    (no Content-Length) fills the disk, which is one line too, and nothing of either stays."""
    sized = source(http_server, data=CONTENT * 40)
    http_server.endless.add("w/endless.pt")
    endless = WeightSource(url=http_server.url("w/endless.pt"), format="hsemotion_pickle", git_sha1="0" * 40)
    script = (
        "import sys\nfrom faceaffect.core.errors import FaceaffectError\n"
        "from faceaffect.hub import fetch\nfrom faceaffect.hub.registry import WeightSource\n"
        "source = WeightSource(sys.argv[1], 'hsemotion_pickle', git_sha1=sys.argv[2])\n"
        "try:\n    fetch(source, cache_dir=sys.argv[3])\n"
        "except FaceaffectError as error:\n    print(error)\n"
    )
    for src, says in ((sized, "needs 840000 bytes"), (endless, "No space left on device")):
        cache = tmp_path / f"cache_{len(says)}"
        done, left = on_small_disk(cache, [sys.executable, "-c", script, src.url, src.git_sha1, str(cache)])
        assert says in done.stdout and done.stdout.count("\n") == 1, done.stderr
        assert left == ["weights"] and cache_files(cache) == []  # its folder made, no partial file
