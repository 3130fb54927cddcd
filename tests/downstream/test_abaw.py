"""ABAW formats: readers of real-format files, clear errors for malformed ones, writers, class mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceaffect.core.errors import InputError
from faceaffect.core.labels import AFFECTNET_7, AFFECTNET_8
from faceaffect.downstream.abaw import (
    ABAW_AU,
    ABAW_EXPR,
    AFFECTNET_TO_ABAW,
    COMPOUND,
    EMI,
    AnnotationError,
    affectnet_to_abaw,
    annotation_folder,
    frame_name,
    labelled,
    parse_frame_name,
    read_annotations,
    read_emi_csv,
    read_frame_annotation,
    write_emi_csv,
    write_frame_predictions,
    write_submission,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_va_file_marks_unannotated_frames(tmp_path: Path) -> None:
    path = write(tmp_path / "v.txt", "valence,arousal\n0.5,-0.25\n-5,-5\n-1,1\n")
    labels = read_frame_annotation(path, "va")
    assert labels.shape == (3, 2) and labels.dtype == np.float32
    np.testing.assert_allclose(labels[[0, 2]], [[0.5, -0.25], [-1.0, 1.0]])
    assert np.isnan(labels[1]).all()
    assert labelled("va", labels).tolist() == [True, False, True]


def test_expr_and_au_files(tmp_path: Path) -> None:
    expr = write(tmp_path / "e.txt", ",".join(ABAW_EXPR) + "\n0\n7\n-1\n3\n")
    assert read_frame_annotation(expr, "expr").tolist() == [0, 7, -1, 3]
    au = write(
        tmp_path / "a.txt",
        ",".join(ABAW_AU) + "\n" + ",".join(["1", "0"] * 6) + "\n" + ",".join(["-1"] * 12) + "\n",
    )
    labels = read_frame_annotation(au, "au")
    assert labels.shape == (2, 12) and labels[0, :4].tolist() == [1, 0, 1, 0]
    assert labelled("au", labels).tolist() == [True, False]


@pytest.mark.parametrize(
    ("task", "text", "line", "words"),
    [
        ("va", "valence;arousal\n0,0\n", 1, "expected the header"),
        ("va", "", 1, "empty file"),
        ("va", "valence,arousal\n0.1,0.2\n0.3\n", 3, "expected 2 comma-separated"),
        ("va", "valence,arousal\n0.1,abc\n", 2, "not a number"),
        ("va", "valence,arousal\n0.1,0.2\n0.1,1.7\n", 3, "outside [-1, 1]"),
        ("expr", ",".join(ABAW_EXPR) + "\n1\n8\n", 3, "not an integer in 0..7"),
        ("expr", ",".join(ABAW_EXPR) + "\n1.5\n", 2, "not an integer"),
        ("expr", "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise\n1\n", 1, "expected the header"),
        ("au", ",".join(ABAW_AU) + "\n" + ",".join(["0"] * 11 + ["2"]) + "\n", 2, "is not 0, 1 or -1"),
        ("au", ",".join(ABAW_AU) + "\n" + ",".join(["0"] * 11) + "\n", 2, "expected 12"),
        ("ce", ",".join(COMPOUND) + "\n7\n", 2, "0..6"),
    ],
)
def test_malformed_annotation_names_file_and_line(
    tmp_path: Path, task: str, text: str, line: int, words: str
) -> None:
    path = write(tmp_path / "video.txt", text)
    with pytest.raises(AnnotationError) as caught:
        read_frame_annotation(path, task)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: ") and words in message and "\n" not in message


def test_annotation_folders_resolve_challenge_layout(tmp_path: Path) -> None:
    root = tmp_path / "Annotations"
    train = write(root / "VA_Estimation_Challenge" / "Train_Set" / "a.txt", "valence,arousal\n0,0\n")
    write(root / "VA_Estimation_Challenge" / "Validation_Set" / "b.txt", "valence,arousal\n0,0\n0,0\n")
    assert annotation_folder(root, "va", "train") == train.parent
    assert annotation_folder(root / "VA_Estimation_Challenge", "va", "validation").name == "Validation_Set"
    assert annotation_folder(train.parent, "va", "validation") == train.parent  # a plain folder of files
    assert {k: len(v) for k, v in read_annotations(root, "va", "validation").items()} == {"b": 2}
    with pytest.raises(InputError, match="EXPR_Recognition_Challenge"):
        read_annotations(root, "expr", "train")


def test_emi_csv(tmp_path: Path) -> None:
    header = "Filename," + ",".join(EMI)
    path = write(
        tmp_path / "train_split.csv", f"{header}\n00001,0.1,0.2,0.3,0.4,0.5,0.6\n00002.mp4,0,0,0,0,0,1\n\n"
    )
    labels = read_emi_csv(path)
    assert list(labels) == ["00001", "00002"]  # ids stay strings with their zeros; extensions dropped
    np.testing.assert_allclose(labels["00001"], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ("Filename,Admiration,Amusement\n1,0,0\n", 1, "lacks column(s) Determination"),
        ("HEADER\n00001,0.1,0.2,0.3,0.4,0.5,x\n", 2, "not a number"),
        ("HEADER\n00001,0.1,0.2,0.3,0.4,0.5,1.5\n", 2, "[0, 1]"),
        ("HEADER\n00001,0.1,0.2,0.3,0.4,0.5\n", 2, "expected 7 columns"),
        ("HEADER\n00001,0,0,0,0,0,0\n00001,0,0,0,0,0,0\n", 3, "appears twice"),
    ],
)
def test_malformed_emi_csv(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = write(tmp_path / "labels.csv", body.replace("HEADER", "Filename," + ",".join(EMI)))
    with pytest.raises(AnnotationError) as caught:
        read_emi_csv(path)
    assert str(caught.value).startswith(f"{path}:{line}: ") and words in str(caught.value)


def test_frame_names() -> None:
    assert frame_name(1) == "00001.jpg" and frame_name(12345, ".png") == "12345.png"
    assert parse_frame_name("video/00042.jpg") == 42
    with pytest.raises(InputError, match="not a frame image name"):
        parse_frame_name("face.jpg")


def test_affectnet_to_abaw_mapping_follows_method() -> None:
    assert AFFECTNET_TO_ABAW == (5, 0, 2, 3, 4, 6, 7, 1)
    values = np.random.default_rng(0).normal(size=(5, 8))
    mapped = affectnet_to_abaw(values)
    for j, source in enumerate([5, 0, 2, 3, 4, 6, 7, 1]):
        np.testing.assert_array_equal(mapped[:, j], values[:, source])
    for j, name in enumerate(ABAW_EXPR[:7]):  # same emotion names; "Other" is Contempt
        np.testing.assert_array_equal(mapped[:, j], values[:, AFFECTNET_8.index(name)])
    np.testing.assert_array_equal(mapped[:, 7], values[:, AFFECTNET_8.index("Contempt")])


def test_seven_class_models_never_predict_other() -> None:
    values = np.random.default_rng(1).normal(size=(20, 7))
    mapped = affectnet_to_abaw(values, AFFECTNET_7)
    assert (mapped.argmax(axis=1) != 7).all()
    np.testing.assert_array_equal(mapped[:, 0], values[:, AFFECTNET_7.index("Neutral")])


def test_prediction_files_read_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    va = {"vid_left": rng.uniform(-1, 1, size=(6, 2))}
    write_frame_predictions(tmp_path / "va", "va", va)
    np.testing.assert_allclose(
        read_frame_annotation(tmp_path / "va" / "vid_left.txt", "va"), va["vid_left"], atol=1e-6
    )
    au = {"v": rng.integers(0, 2, size=(4, 12))}
    write_frame_predictions(tmp_path / "au", "au", au)
    np.testing.assert_array_equal(read_frame_annotation(tmp_path / "au" / "v.txt", "au"), au["v"])
    submission = write_submission(tmp_path / "expr.txt", "expr", {"a": np.array([3, 0]), "b": np.array([7])})
    assert submission.read_text().splitlines() == [
        "image_location," + ",".join(ABAW_EXPR),
        "a/00001.jpg,3",
        "a/00002.jpg,0",
        "b/00001.jpg,7",
    ]
    emi = {"00003": rng.uniform(0, 1, 6)}
    np.testing.assert_allclose(
        read_emi_csv(write_emi_csv(tmp_path / "emi.csv", emi))["00003"], emi["00003"], atol=1e-6
    )
