"""The HTTP API on the real app and the embedded model, with real sample files: answers, jobs and their
outputs (the same table as `faceaffect analyze`), and every refusal as one line of JSON with its code."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from conftest import Samples, app_client, finished, upload, wait_for
from fastapi.testclient import TestClient
from moving_faces import write_video
from PIL import Image
from test_images import png_header_only
from typer.testing import CliRunner

from faceaffect.analysis import Analyzer
from faceaffect.cli import app as cli


def error_of(response: object, status: int) -> str:
    """The one-line error of a refused request, after checking its status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and body["error"]
    return body["error"]


def test_image_answers_every_face_as_the_library_does(client: TestClient, samples: Samples) -> None:
    answer = client.post("/v1/images", files=upload(samples.two_faces, kind="image/jpeg")).json()
    expected = Analyzer(embeddings=True).analyze(samples.two_faces).frames[0].faces
    assert answer["model"] == "mbf_ferplus_8" and len(answer["labels"]) == 8
    assert [face["rank"] for face in answer["faces"]] == list(range(len(expected))) == [0, 1]
    for face, truth in zip(answer["faces"], expected, strict=True):
        assert face["box"] == {"x1": truth.box.x1, "y1": truth.box.y1, "x2": truth.box.x2, "y2": truth.box.y2}
        assert face["score"] == pytest.approx(truth.box.score)
        assert list(face["probabilities"].values()) == pytest.approx(list(truth.probabilities), abs=1e-7)
        assert face["top_label"] == truth.top_label
        assert face["valence"] is None and face["arousal"] is None and "embedding" not in face
    embedded = client.post("/v1/images?embeddings=true", files=upload(samples.two_faces)).json()["faces"]
    for face, truth in zip(embedded, expected, strict=True):
        assert np.allclose(face["embedding"], truth.embedding, atol=1e-6) and len(face["embedding"]) == 512


@pytest.mark.slow
def test_image_of_a_valence_arousal_model(tmp_path: Path, va_model: Path, samples: Samples) -> None:
    from faceaffect.options import RuntimeOptions

    with app_client(tmp_path, runtime=RuntimeOptions(model=str(va_model))) as client:
        faces = client.post("/v1/images", files=upload(samples.two_faces)).json()["faces"]
        assert client.get("/v1/models").json()["loaded"]["has_va"] is True
        fields = {"options": '{"max_frames": 12}', "outputs": "plots"}
        job = wait_for(
            client, client.post("/v1/jobs", files=upload(samples.video), data=fields).json()["id"], finished
        )
        circumplex = client.get(job["links"]["plots/valence_arousal"])
        summary = client.get(job["links"]["summary"], params={"format": "json"}).json()
    assert len(faces) == 2
    assert all(-1 <= face[key] <= 1 for face in faces for key in ("valence", "arousal"))
    assert job["result"]["has_va"] and Image.open(io.BytesIO(circumplex.content)).format == "PNG"
    assert summary[0]["frames"] == 12 and -1 <= summary[0]["valence"] <= 1


@pytest.mark.slow
def test_video_job_makes_the_cli_table_and_every_output(
    client: TestClient, samples: Samples, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"detect_every": 2, "embeddings": True}
    files = upload(samples.video, kind="video/mp4")
    created = client.post(
        "/v1/jobs", files=files, data={"options": json.dumps(options), "outputs": "plots,annotated"}
    )
    assert created.status_code == 202, created.text
    job = created.json()
    assert created.headers["location"] == f"/v1/jobs/{job['id']}" and job["status"] in ("queued", "running")
    done = wait_for(client, job["id"], finished)
    assert done["status"] == "done", done["error"]
    assert done["progress"] == {"done": 72, "total": 72} and done["result"]["frames"] == 72
    assert done["outputs"] == ["annotated", "plots"] and done["options"]["detect_every"] == 2

    monkeypatch.chdir(samples.video.parent)  # the CLI names the source as given: the bare file name
    code = CliRunner().invoke(cli, ["analyze", samples.video.name, "-o", str(tmp_path / "cli.parquet"),
                                    "--detect-every", "2", "-q"]).exit_code  # fmt: skip
    assert code == 0
    expected = pd.read_parquet(tmp_path / "cli.parquet")
    table = pd.read_parquet(io.BytesIO(client.get(f"/v1/jobs/{job['id']}/table?format=parquet").content))
    pd.testing.assert_frame_equal(table, expected)
    assert done["result"]["faces"] == len(table) > 0

    csv = client.get(f"/v1/jobs/{job['id']}/table")  # CSV by default, as a download
    assert csv.headers["content-disposition"] == f'attachment; filename="table-{job["id"]}.csv"'
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(csv.text)), expected, check_dtype=False)
    lines = client.get(f"/v1/jobs/{job['id']}/table?format=jsonl").text.splitlines()
    assert [json.loads(line)["frame"] for line in lines] == expected.frame.tolist()
    summary = client.get(f"/v1/jobs/{job['id']}/summary?format=json").json()
    assert [row["frames"] for row in summary] == [72] and summary[0]["valence"] is None
    embeddings = np.load(io.BytesIO(client.get(f"/v1/jobs/{job['id']}/embeddings").content))
    assert embeddings.shape == (len(table), 512)
    video = client.get(f"/v1/jobs/{job['id']}/annotated")
    assert video.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(video.content)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 72
    plot = client.get(f"/v1/jobs/{job['id']}/plots/expressions")
    assert plot.headers["content-type"] == "image/png" and Image.open(io.BytesIO(plot.content)).size[0] > 500
    error_of(client.get(f"/v1/jobs/{job['id']}/plots/valence_arousal"), 404)  # the model has no VA

    assert [listed["id"] for listed in client.get("/v1/jobs").json()["jobs"]] == [job["id"]]
    folder = client.app.state.service.store.get(job["id"]).folder
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    error_of(client.get(f"/v1/jobs/{job['id']}"), 404)
    assert not folder.exists() and client.get("/v1/jobs").json()["jobs"] == []


def test_image_job_annotates_the_image(client: TestClient, samples: Samples) -> None:
    job = client.post(
        "/v1/jobs", files=upload(samples.two_faces, "people.jpg"), data={"outputs": "annotated"}
    )
    done = wait_for(client, job.json()["id"], finished)
    assert done["status"] == "done" and done["kind"] == "image" and done["result"]["faces"] == 2
    table = pd.read_csv(io.StringIO(client.get(f"{done['links']['table']}").text))
    assert table.source.tolist() == ["people.jpg"] * 2 and table.track_id.tolist() == [0, 1]
    annotated = Image.open(io.BytesIO(client.get(done["links"]["annotated"]).content))
    assert annotated.format == "PNG" and annotated.size == Image.open(samples.two_faces).size


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"options": "{target_fps: 5}"}, "options is not valid JSON"),
        ({"options": "[5]"}, "options must be a JSON object, got list"),
        ({"options": '{"target_fpss": 5}'}, "unknown option 'target_fpss'"),
        ({"options": '{"target_fps": "fast"}'}, "option target_fps must be float or None, got 'fast'"),
        ({"options": '{"stride": 2, "target_fps": 5}'}, "give either a stride or a target fps, not both"),
        ({"options": '{"detector": "dlib"}'}, "option 'detector' is the server's"),
        ({"outputs": "annotated,video"}, "unknown output 'video'"),
    ],
)
def test_bad_job_options_are_422(client: TestClient, samples: Samples, fields: dict, message: str) -> None:
    assert message in error_of(client.post("/v1/jobs", files=upload(samples.video), data=fields), 422)
    assert client.get("/v1/jobs").json()["jobs"] == []
    assert not any(client.app.state.service.uploads.iterdir())  # the upload is gone


def audio_file(path: Path) -> Path:
    """A real WAV file (sound, no video)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def bad_files(
    tmp_path_factory: pytest.TempPathFactory, shared_data: Path
) -> dict[str, tuple[str, bytes, str]]:
    """name -> (upload file name, content, declared type) of every kind of bad upload."""
    folder = tmp_path_factory.mktemp("bad")
    photo = (shared_data / "faces" / "face_recognition" / "two_people.jpg").read_bytes()
    video = (shared_data / "videos" / "pyfeat_tests" / "single_face.mp4").read_bytes()
    huge = write_video(folder / "huge.mp4", [np.zeros((4100, 4100, 3), np.uint8)], fps=1, codec="mpeg4")
    return {
        "text": ("notes.txt", b"not a picture\n" * 100, "text/plain"),
        "audio": ("sound.wav", audio_file(folder / "sound.wav").read_bytes(), "audio/wav"),
        "garbage named as an image": ("photo.jpg", b"\x00garbage" * 500, "image/jpeg"),
        "garbage named as a video": ("clip.mp4", b"\x00garbage" * 500, "application/octet-stream"),
        "truncated image": ("photo.jpg", photo[: len(photo) // 3], "image/jpeg"),
        "truncated video": ("clip.mp4", video[: len(video) // 2], "video/mp4"),
        "bomb": ("bomb.png", png_header_only(30000, 30000), "image/png"),
        "huge frames": ("huge.mp4", huge.read_bytes(), "video/mp4"),
        "video": ("clip.mp4", video, "video/mp4"),
    }


@pytest.mark.parametrize(
    ("kind", "endpoint", "status", "message"),
    [
        ("text", "/v1/images", 415, "notes.txt is neither an image nor a video"),
        ("text", "/v1/jobs", 415, "notes.txt is neither an image nor a video"),
        ("audio", "/v1/jobs", 415, "sound.wav is neither an image nor a video"),
        ("video", "/v1/images", 415, "clip.mp4 is a video: send it to /v1/jobs"),
        ("garbage named as an image", "/v1/images", 422, "cannot read image photo.jpg"),
        ("garbage named as a video", "/v1/jobs", 422, "cannot open video clip.mp4"),
        ("truncated image", "/v1/images", 422, "cannot read image photo.jpg"),
        ("truncated image", "/v1/jobs", 422, "image file is truncated"),
        ("truncated video", "/v1/jobs", 422, "cannot open video clip.mp4"),
        ("bomb", "/v1/images", 413, "30000x30000 pixels, more than the limit"),
        ("bomb", "/v1/jobs", 413, "(a decompression bomb?)"),
        ("huge frames", "/v1/jobs", 413, "has frames of 4100x4100 pixels"),
    ],
)
def test_bad_uploads_are_refused(
    client: TestClient, bad_files: dict, kind: str, endpoint: str, status: int, message: str
) -> None:
    assert message in error_of(client.post(endpoint, files={"file": bad_files[kind]}), status)
    assert client.get("/v1/jobs").json()["jobs"] == []
    assert not any(client.app.state.service.uploads.iterdir())


def test_malformed_requests_are_400_and_415(client: TestClient, samples: Samples) -> None:
    message = error_of(client.post("/v1/jobs", json={"file": "clip.mp4"}), 415)
    assert "multipart/form-data" in message
    assert "no file" in error_of(client.post("/v1/jobs", files={"video": ("a.mp4", b"x")}), 400)
    assert "empty" in error_of(client.post("/v1/images", files={"file": ("a.jpg", b"")}), 400)
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    assert "ended early" in error_of(client.post("/v1/jobs", content=b"--xyz\r\nfoo", headers=headers), 400)
    assert "embeddings" in error_of(
        client.post("/v1/images?embeddings=maybe", files=upload(samples.two_faces)), 422
    )


def test_uploads_over_the_limit_are_413(tmp_path: Path, samples: Samples) -> None:
    with app_client(tmp_path, max_upload_mb=0.1) as client:  # 100 KB; the video is 203 KB
        assert "larger than the limit of 0.1 MB" in error_of(
            client.post("/v1/jobs", files=upload(samples.video)), 413
        )
        assert not any(client.app.state.service.uploads.iterdir())
        declared = {"content-type": "multipart/form-data; boundary=xyz", "content-length": str(10**9)}
        assert "larger than the limit" in error_of(
            client.post("/v1/jobs", headers=declared, content=b""), 413
        )


def test_a_full_queue_is_503_with_retry_after(tmp_path: Path, samples: Samples) -> None:
    with app_client(tmp_path, max_queue=1) as client:
        lane = client.app.state.service.lane
        with lane.reserve():  # the one place: a request being received
            busy = client.post("/v1/images", files=upload(samples.two_faces))
            assert "queue is full" in error_of(busy, 503) and busy.headers["retry-after"] == "2"
            assert client.get("/readyz").status_code == 503
        assert client.post("/v1/images", files=upload(samples.two_faces)).status_code == 200
        assert client.get("/readyz").json()["status"] == "ready"


def test_unknown_jobs_routes_and_unfinished_outputs(client: TestClient, samples: Samples) -> None:
    error_of(client.get("/v1/jobs/0123456789abcdef0123456789abcdef"), 404)
    error_of(client.get("/v1/jobs/..%2F..%2Fetc"), 404)
    error_of(client.get("/v1/nothing"), 404)
    error_of(client.put("/v1/jobs"), 405)
    error_of(client.get("/v1/jobs/x/table?format=xlsx"), 422)
    job, queued = (client.post("/v1/jobs", files=upload(samples.long_video)).json() for _ in range(2))
    assert error_of(client.get(f"/v1/jobs/{job['id']}/table"), 409).endswith(("is queued", "is running"))
    assert error_of(client.get(f"/v1/jobs/{queued['id']}/summary"), 409).endswith("is queued")
    store, lane = client.app.state.service.store, client.app.state.service.lane
    folders = [store.get(job["id"]).folder, store.get(queued["id"]).folder]
    assert client.delete(f"/v1/jobs/{queued['id']}").status_code == 204  # taken off the queue
    wait_for(client, job["id"], lambda status: status["progress"]["done"] > 0)
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204  # stopped while it runs
    error_of(client.get(f"/v1/jobs/{job['id']}"), 404)
    assert not any(folder.exists() for folder in folders) and client.get("/v1/jobs").json()["jobs"] == []
    deadline = time.monotonic() + 10
    while lane.admitted and time.monotonic() < deadline:  # the running job stops at its next frame
        time.sleep(0.05)
    assert lane.admitted == 0
    assert client.post("/v1/images", files=upload(samples.two_faces)).status_code == 200  # the lane goes on


def test_token_is_needed_on_every_request(
    tmp_path: Path, samples: Samples, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEAFFECT_SERVE_TOKEN", "s3cret")  # the default of the settings
    with app_client(tmp_path) as client:
        for path in ("/healthz", "/", "/static/app.js", "/openapi.json", "/v1/jobs"):
            refused = client.get(path)
            assert "token" in error_of(refused, 401) and refused.headers["www-authenticate"].startswith(
                "Basic"
            )
        error_of(client.get("/healthz", headers={"authorization": "Bearer wrong"}), 401)
        error_of(client.get("/healthz", headers={"authorization": "Basic !!"}), 401)
        assert client.get("/healthz", headers={"authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/", auth=("anyone", "s3cret")).status_code == 200  # a browser's login prompt
        error_of(client.post("/v1/images", files=upload(samples.two_faces)), 401)


def test_cors_is_off_unless_asked(tmp_path: Path) -> None:
    preflight = {"origin": "http://lab.example", "access-control-request-method": "POST"}
    with app_client(tmp_path / "off") as client:
        assert "access-control-allow-origin" not in client.get("/healthz", headers=preflight).headers
        assert client.options("/v1/jobs", headers=preflight).status_code == 405
    with app_client(tmp_path / "on", cors_origins=("http://lab.example",)) as client:
        allowed = client.options("/v1/jobs", headers=preflight)
        assert (
            allowed.status_code == 200
            and allowed.headers["access-control-allow-origin"] == "http://lab.example"
        )
        other = client.options("/v1/jobs", headers={**preflight, "origin": "http://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers


def test_page_docs_and_health_work_offline(client: TestClient) -> None:
    page = client.get("/")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")  # nothing from elsewhere
    for path in ("/", "/static/app.js", "/static/style.css", "/docs"):
        text = client.get(path).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
    docs = client.get("/docs").text
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert asset in docs and client.get(asset).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/images", "/v1/jobs", "/v1/jobs/{job_id}", "/v1/models", "/healthz", "/readyz"} <= set(paths)
    assert "multipart/form-data" in paths["/v1/jobs"]["post"]["requestBody"]["content"]
    assert client.get("/healthz").json() == {"status": "ok"}
    models = client.get("/v1/models").json()
    assert models["loaded"]["name"] == "mbf_ferplus_8" and models["loaded"]["has_va"] is False
    assert "enet_b0_8_va_mtl" in [model["name"] for model in models["registered"]]
