"""Each reader parses a small file in its real format; malformed rows name file and line."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceaffect.core.labels import AFFECTNET_7, AFFECTNET_8
from faceaffect.core.limits import raised_limits
from faceaffect.hub.registry import get_config
from faceaffect.train.datasets import (
    DatasetError,
    FaceDataset,
    decode,
    parse_label,
    read_affectnet,
    read_csv,
    read_ferplus,
    read_image_folder,
    read_samples,
)
from faceaffect.train.transforms import Augment, ImageTransform

AFFECTNET_HEADER = (
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
)
FERPLUS_ROWS = [
    'fer0000001.png,"(0, 0, 48, 48)",0,10,0,0,0,0,0,0,0,0',  # happiness
    'fer0000002.png,"(0, 0, 48, 48)",5,5,0,0,0,0,0,0,0,0',  # tied: dropped
    'fer0000003.png,"(0, 0, 48, 48)",1,0,0,0,0,0,0,0,2,7',  # not-a-face dominant: dropped
    'fer0000004.png,"(0, 0, 48, 48)",4,0,0,0,1,0,0,3,2,0',  # neutral; unknown does not beat it
    'fer0000005.png,"(2, 4, 40, 30)",0,0,0,0,0,0,0,6,4,0',  # contempt; box cropped
]


def _png(path: Path, size: tuple[int, int] = (48, 48), mode: str = "L", value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 20, 200)).save(path)
    return path


def _ferplus_split(folder: Path, rows: list[str] = FERPLUS_ROWS) -> Path:
    folder.mkdir(parents=True)
    (folder / "label.csv").write_text("\n".join(rows) + "\n")
    for row in rows:
        _png(folder / row.split(",")[0])
    return folder


def test_parse_label_accepts_names_aliases_and_indices() -> None:
    assert [AFFECTNET_8[parse_label(t)] for t in ("happy", "SAD", "Contempt", "0", " surprised ")] == [
        "Happiness", "Sadness", "Contempt", "Anger", "Surprise",
    ]  # fmt: skip
    for bad in ("bored", "8"):
        with pytest.raises(ValueError):
            parse_label(bad)


def test_affectnet_csv_remaps_codes_crops_and_drops(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "1" / "a.jpg", size=(60, 50), mode="RGB")
    rows = [
        AFFECTNET_HEADER,
        "1/a.jpg,10,5,30,20,1.0;2.0;3.0,0,0.25,-0.5",  # Neutral
        "1/a.jpg,0,0,60,50,,6,-0.8,0.9",  # Anger
        "1/a.jpg,0,0,60,50,,7,0.1,0.2",  # Contempt
        "1/a.jpg,0,0,60,50,,9,-2,-2",  # Uncertain: dropped
        "1/a.jpg,0,0,60,50,,4,-2,-2",  # Fear without valence-arousal
    ]
    csv_path = tmp_path / "lists" / "training.csv"
    csv_path.parent.mkdir()
    csv_path.write_text("\n".join(rows) + "\n")
    samples = read_affectnet(csv_path, image_root=tmp_path / "images")
    assert [AFFECTNET_8[s.expression] for s in samples] == ["Neutral", "Anger", "Contempt", "Fear"]
    assert (samples[0].valence, samples[0].arousal) == (0.25, -0.5)
    assert (samples[3].valence, samples[3].arousal) == (None, None)
    assert decode(samples[0]).shape == (20, 30, 3)
    assert samples[1].source == f"{csv_path}:3"


def test_affectnet_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    csv_path = tmp_path / "validation.csv"
    csv_path.write_text(f"{AFFECTNET_HEADER}\na.jpg,0,0,9,9,,1,0.1,0.1\nb.jpg,0,0,9,9,,happy,0.1,0.1\n")
    with pytest.raises(DatasetError, match=rf"^{csv_path}:3: "):
        read_affectnet(csv_path)
    csv_path.write_text("path,expression\na.jpg,1\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_affectnet(csv_path)


def test_ferplus_folder_majority_protocol_and_votes(tmp_path: Path) -> None:
    folder = _ferplus_split(tmp_path / "FER2013Valid")
    samples = read_ferplus(folder)
    assert [AFFECTNET_8[s.expression] for s in samples] == ["Happiness", "Neutral", "Contempt"]
    neutral = dict(zip(AFFECTNET_8, samples[1].votes, strict=True))
    assert neutral == pytest.approx({**dict.fromkeys(AFFECTNET_8, 0.0), "Neutral": 0.5, "Anger": 0.125,
                                     "Contempt": 0.375})  # fmt: skip
    face = decode(samples[2])
    assert face.shape == (30, 40, 3) and (face[..., 0] == face[..., 2]).all()  # grey replicated to RGB
    assert read_samples("ferplus", folder)[0].image == folder / "fer0000001.png"
    assert len(read_ferplus(tmp_path, split="valid")) == 3


def test_ferplus_train_archive(tmp_path: Path) -> None:
    _ferplus_split(tmp_path / "src" / "FER2013Train")
    archive = tmp_path / "FER2013Train.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "FER2013Train", arcname="FER2013Train")
    samples = read_ferplus(tmp_path, split="train")
    assert len(samples) == 3 and all(isinstance(s.image, bytes) for s in samples)
    assert samples[0].source == f"{archive}:FER2013Train/label.csv:1"
    assert decode(samples[0]).shape == (48, 48, 3)
    assert [s.expression for s in read_ferplus(archive)] == [s.expression for s in samples]


def test_an_archive_is_read_into_memory_only_up_to_the_limit(tmp_path: Path) -> None:
    _ferplus_split(tmp_path / "src" / "FER2013Train")
    archive = tmp_path / "FER2013Train.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "FER2013Train", arcname="FER2013Train")
    with (
        raised_limits(max_archive_bytes=300),
        pytest.raises(DatasetError, match="FACEAFFECT_MAX_ARCHIVE_BYTES"),
    ):
        read_ferplus(archive)
    bomb = tmp_path / "bomb.tar"  # a member header that declares 64 GB, followed by a few bytes
    member = tarfile.TarInfo("FER2013Train/fer0000001.png")
    member.size = 64 << 30
    bomb.write_bytes(member.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024)
    with pytest.raises(DatasetError, match=r"fer0000001\.png \(68719476736 bytes\) takes the data read into"):
        read_ferplus(bomb)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('fer9.png,"(0, 0, 48, 48)",0,10,0,0,0,0,0,0,0', "expected 12 columns"),
        ('fer9.png,"0 0 48 48",0,10,0,0,0,0,0,0,0,0', "face box"),
        ('fer9.png,"(0, 0, 48, 48)",0,ten,0,0,0,0,0,0,0,0', "integers"),
    ],
)
def test_ferplus_malformed_row_names_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    folder = _ferplus_split(tmp_path / "FER2013Test", [*FERPLUS_ROWS[:2], row])
    with pytest.raises(DatasetError, match=rf"^{folder / 'label.csv'}:3: .*{message}"):
        read_ferplus(folder)


def test_plain_csv_and_its_errors(tmp_path: Path) -> None:
    _png(tmp_path / "x.png")
    csv_path = tmp_path / "faces.csv"
    csv_path.write_text("path,expression,valence,arousal\nx.png,happy,0.5,0.1\nx.png,6,,\n")
    samples = read_csv(csv_path)
    assert [(AFFECTNET_8[s.expression], s.valence, s.arousal) for s in samples] == [
        ("Happiness", 0.5, 0.1), ("Sadness", None, None),
    ]  # fmt: skip
    assert samples[0].image == tmp_path / "x.png"
    csv_path.write_text("path,expression\nx.png,happy\n\nx.png,bored\n")
    with pytest.raises(DatasetError, match=rf"^{csv_path}:4: unknown expression 'bored'"):
        read_csv(csv_path)
    csv_path.write_text("path,expression,valence\nx.png,happy,0.5\nx.png,sad,nan\n")
    with pytest.raises(DatasetError, match=rf"^{csv_path}:3: not a finite number"):
        read_csv(csv_path)


def test_image_folder(tmp_path: Path) -> None:
    _png(tmp_path / "happy" / "1.png")
    _png(tmp_path / "Anger" / "2.jpg", mode="RGB")
    (tmp_path / "Anger" / "notes.txt").write_text("not an image")
    samples = read_image_folder(tmp_path)
    assert [AFFECTNET_8[s.expression] for s in samples] == ["Anger", "Happiness"]
    (tmp_path / "misc").mkdir()
    with pytest.raises(DatasetError, match="misc: unknown expression"):
        read_image_folder(tmp_path)


def test_unreadable_image_names_its_source(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "faces.csv").write_text("path,expression\nbad.png,happy\n")
    with pytest.raises(DatasetError, match=r"faces.csv:2: cannot read image"):
        decode(read_csv(tmp_path / "faces.csv")[0])


def test_face_dataset_targets_and_transforms(tmp_path: Path) -> None:
    folder = _ferplus_split(tmp_path / "FER2013Valid")
    config = get_config("mbf_va_mtl").replace(input_size=32)
    dataset = FaceDataset(read_ferplus(folder), ImageTransform(config))
    image, targets = dataset[0]
    assert image.shape == (3, 32, 32)
    assert torch.allclose(image, torch.full_like(image, (100 / 255 - 0.5) / 0.5))
    assert targets["expression"] == AFFECTNET_8.index("Happiness")
    assert targets["valence_arousal"].isnan().all() and targets["votes"].sum() == pytest.approx(1.0)
    seven = FaceDataset(read_ferplus(folder), ImageTransform(config), AFFECTNET_7)
    assert len(seven) == 2 and seven.targets().tolist() == [AFFECTNET_7.index("Happiness"), 4]
    assert seven[1][1]["votes"].tolist() == pytest.approx([0.2, 0, 0, 0, 0.8, 0, 0])
    torch.manual_seed(0)
    augmented = ImageTransform(config, Augment(hflip=1.0, erasing=1.0))(np.full((40, 30, 3), 200, np.uint8))
    assert augmented.shape == (3, 32, 32) and torch.isfinite(augmented).all()
    assert (augmented == 0).any()  # the erased rectangle (normalised mean colour)


def test_real_ferplus_test_split_matches_its_readme(shared_data: Path) -> None:
    samples = read_ferplus(shared_data / "ferplus", split="test")
    counts = np.bincount([s.expression for s in samples], minlength=8)
    expected = {"Neutral": 1163, "Happiness": 909, "Surprise": 428, "Sadness": 428, "Anger": 312, "Fear": 97,
                "Contempt": 28, "Disgust": 20}  # fmt: skip
    assert dict(zip(AFFECTNET_8, counts.tolist(), strict=True)) == expected
