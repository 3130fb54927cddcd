"""`faceaffect analyze` on videos as they come from the world: damaged, cut short, recorded sideways on a
phone, too big; each built here, each ending in a table and a clear word, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from moving_faces import HEIGHT, WIDTH, damage_packets, moving_frames, write_video
from small_disk import on_small_disk
from typer.testing import CliRunner

import faceaffect
from faceaffect.cli import app
from faceaffect.recognizer import Recognizer

runner = CliRunner()


def run(*args: object) -> tuple[int, str, str]:
    result = runner.invoke(app, ["analyze", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_damaged_packets_are_skipped_and_the_user_told(tiny_model: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.mp4", moving_frames(40), fps=25, gop=10)
    damage_packets(video, range(15, 19))
    code, _, stderr = run(
        video, "-m", tiny_model, "-o", tmp_path / "t.csv", "--summary", tmp_path / "s.csv", "-q"
    )
    assert code == 0, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {video}: 4 damaged packets skipped; frame")
    assert "could not be decoded" in lines[0] and "Traceback" not in stderr
    table, summary = pd.read_csv(tmp_path / "t.csv"), pd.read_csv(tmp_path / "s.csv")
    lost = set(range(40)) - set(table.frame)
    assert lost and max(lost) < 20 and table.frame.max() == 39  # the rest of the video was analysed
    assert summary.lost_frames.tolist() == [len(lost)] * 2  # both faces span the gap


def test_a_cut_fragmented_video_gives_its_frames_and_a_warning(tiny_model: Path, tmp_path: Path) -> None:
    video = write_video(tmp_path / "rec.mp4", moving_frames(50), fps=25, movflags="frag_keyframe+empty_moov",
                        gop=10)  # fmt: skip
    data = video.read_bytes()
    video.write_bytes(data[: len(data) * 6 // 10])
    code, _, stderr = run(video, "-m", tiny_model, "-o", tmp_path / "t.parquet", "-q")
    assert code == 0, stderr
    assert "frames its container declares were read (truncated or damaged file)" in stderr
    frames = pd.read_parquet(tmp_path / "t.parquet").frame
    assert 0 < frames.nunique() < 50 and frames.nunique() == frames.max() + 1


def test_a_phone_video_recorded_sideways_is_analysed_upright(
    recognizer: Recognizer, tiny_model: Path, tmp_path: Path
) -> None:
    """Stored turned a quarter clockwise, with a display matrix saying to turn it back: the faces are found
    upright, at the boxes of the upright clip, and the annotated video is upright."""
    frames = moving_frames(8)
    upright = write_video(tmp_path / "upright.mp4", frames, fps=25)
    sideways = [np.ascontiguousarray(np.rot90(frame, -1)) for frame in frames]
    phone = write_video(tmp_path / "phone.mp4", sideways, fps=25, rotation=(90, False))
    with av.open(str(phone)) as container:
        assert next(container.decode(video=0)).to_ndarray(format="rgb24").shape == (WIDTH, HEIGHT, 3)
    boxes = ["frame", "track_id", "x1", "y1", "x2", "y2"]
    want = faceaffect.analyze(upright, model=recognizer).to_table()[boxes]
    code, _, stderr = run(
        phone, "-m", tiny_model, "-o", tmp_path / "t.csv", "--video", tmp_path / "a.mp4", "-q"
    )
    assert code == 0, stderr
    got = pd.read_csv(tmp_path / "t.csv")[boxes]
    assert len(got) == len(want) == 16 and (got.track_id == want.track_id).all()
    np.testing.assert_allclose(got.to_numpy(float), want.to_numpy(float), atol=3)
    with av.open(str(tmp_path / "a.mp4")) as container:
        assert next(container.decode(video=0)).to_ndarray(format="rgb24").shape == (HEIGHT, WIDTH, 3)


@pytest.mark.slow
def test_an_8192_pixel_square_video_is_refused_before_decoding(tiny_model: Path, tmp_path: Path) -> None:
    """200 KB of H.264 that would take gigabytes to decode and hold: refused from its header, in a process
    that stays small; the documented option raises the limit."""
    path = tmp_path / "huge.mp4"
    with av.open(str(path), "w") as container:
        cheap = {"preset": "ultrafast", "tune": "zerolatency", "threads": "1"}  # 0.5 GB to encode, not 3
        stream = container.add_stream("libx264", rate=1, options=cheap)
        stream.width = stream.height = 8192
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame(8192, 8192, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert path.stat().st_size < 300_000
    script = "from faceaffect.cli import app; app()"
    command = [sys.executable, "-c", script, "analyze", str(path), "-m", str(tiny_model), "-q"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    stderr = process.stderr.read() if process.stderr else ""
    assert os.waitstatus_to_exitcode(status) == 1 and len(stderr.strip().splitlines()) == 1
    assert (
        "has frames of 8192x8192 pixels, more than the limit of 16777216; raise it with --max-frame-pixels"
        in stderr
        and usage.ru_maxrss < 2_000_000
    )  # kB: far from the 9 GB
    code, _, stderr = run(path, "-m", tiny_model, "--max-frame-pixels", 60_000_000, "-q")
    assert code == 1 and "more than the limit of 60000000" in stderr


@pytest.mark.slow
def test_a_stream_that_stops_sending_keeps_its_frames_and_ends_in_a_clear_error(
    tiny_model: Path, tmp_path: Path
) -> None:
    """An HTTP server on 127.0.0.1 sends the first 70 % of an MPEG-TS stream and then nothing: the frames
    that came are in the table, and the run ends after the read timeout with one line."""
    stream = write_video(tmp_path / "live.ts", moving_frames(25) * 6, fps=25).read_bytes()
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n\r\n" + stream[: len(stream) * 7 // 10]
        )
        stop.wait(60)
        connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/live.ts"
    try:
        options = ["--read-timeout", 1, "-o", tmp_path / "t.csv", "--no-show", "-q"]
        code, _, stderr = run(url, "-m", tiny_model, *options)
    finally:
        stop.set()
        thread.join(5)
        server.close()
    assert (
        code == 1 and stderr == f"error: {url}: no data for 1 s (raise --read-timeout, option read_timeout)\n"
    )
    frames = pd.read_csv(tmp_path / "t.csv").frame
    assert 40 < frames.nunique() < 150 and frames.nunique() == frames.max() + 1


@pytest.mark.slow
def test_a_table_onto_a_full_disk_is_one_line_and_leaves_nothing(tiny_model: Path, tmp_path: Path) -> None:
    """Rows written as they come, onto a 64 KB tmpfs that the embeddings fill: one line, no partial file."""
    video = write_video(tmp_path / "clip.mp4", moving_frames(30), fps=25)
    disk = tmp_path / "disk"
    command = [sys.executable, "-m", "faceaffect", "analyze", str(video), "-m", str(tiny_model), "-q",
               "-o", str(disk / "t.csv"), "--embeddings", str(disk / "e.npy")]  # fmt: skip
    done, left = on_small_disk(disk, command)
    written = [f"error: cannot write {disk / name}: No space left on device\n" for name in ("t.csv", "e.npy")]
    assert done.returncode == 1 and done.stderr in written and left == []
