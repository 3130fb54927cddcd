"""Audio features for fusion: the sound track read by PyAV, encoded by a wav2vec2-class model (transformers).

transformers is an optional extra (``pip install "faceaffect[audio]"``) and nothing is downloaded: the model
is a local folder saved by ``save_pretrained`` or a name already in the Hugging Face cache.

>>> waveform = read_audio("clip.mp4", sample_rate=16000)  # doctest: +SKIP
>>> times, hidden = Wav2Vec2Encoder("models/wav2vec2-base").encode(waveform)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from faceaffect.core.errors import FaceaffectError, InputError


class AudioEncoder(Protocol):
    """Turns a mono waveform at ``sample_rate`` into states (T, H) at times (T,) in seconds."""

    name: str
    sample_rate: int

    def encode(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def has_audio(path: str | Path) -> bool:
    """Whether a media file has a sound track."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except av.FFmpegError:
        return False


def read_audio(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """The first sound track of a media file as mono float32 samples in [-1, 1] at ``sample_rate``."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError(f"{path}: no audio stream")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = []
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    except av.FFmpegError as error:
        raise InputError(f"cannot decode audio of {path}: {error}") from None
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


class Wav2Vec2Encoder:
    """The last hidden state of a wav2vec2-class model, one state every ``hop`` samples (20 ms).

    ``model`` is a local folder or a cached hub name (never downloaded), or a loaded transformers model.
    Long recordings are encoded in chunks of ``chunk_seconds``; each chunk is normalised to zero mean and unit
    variance as wav2vec2's feature extractor does.
    """

    def __init__(
        self,
        model: str | Path | Any,
        *,
        device: str = "cpu",
        chunk_seconds: float = 20.0,
        sample_rate: int = 16000,
    ) -> None:
        import torch

        if isinstance(model, str | Path):
            self.name = str(model)
            model = _load_transformers_model(model)
        else:
            self.name = type(model).__name__
        self.model = model.to(device).eval()
        self.device = device
        self.sample_rate = sample_rate
        self.chunk = int(chunk_seconds * sample_rate)
        kernels, strides = model.config.conv_kernel, model.config.conv_stride
        self.hop = math.prod(strides)  # samples between states
        self.receptive = 1  # samples seen by one state
        for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
            self.receptive = (self.receptive - 1) * stride + kernel
        self._torch = torch

    def encode(self, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(times (T,), hidden (T, H)): each state at the centre of the samples it sees, in seconds.

        A tail shorter than one state's receptive field (25 ms for wav2vec2) gives no state.
        """
        waveform = np.asarray(waveform, dtype=np.float32).ravel()
        states, times = [], []
        for start in range(0, len(waveform), self.chunk):
            piece = waveform[start : start + self.chunk]
            if len(piece) < self.receptive:
                break
            piece = (piece - piece.mean()) / (piece.std() + 1e-7)
            with self._torch.inference_mode():
                batch = self._torch.from_numpy(piece)[None].to(self.device)
                hidden = self.model(batch).last_hidden_state[0].float().cpu().numpy()
            states.append(hidden)
            times.append((start + np.arange(len(hidden)) * self.hop + self.receptive / 2) / self.sample_rate)
        width = int(self.model.config.hidden_size)
        if not states:
            return np.zeros(0, np.float32), np.zeros((0, width), np.float32)
        return np.concatenate(times).astype(np.float32), np.concatenate(states).astype(np.float32)


def _load_transformers_model(name: str | Path) -> Any:
    from faceaffect.models._torchvision_compat import ensure_torchvision_importable

    ensure_torchvision_importable()  # transformers imports torchvision, broken in some torch/vision pairs
    try:
        from transformers import AutoModel
    except ImportError:
        raise FaceaffectError(
            'audio features need the optional transformers package: pip install "faceaffect[audio]"'
        ) from None
    try:
        return AutoModel.from_pretrained(str(name), local_files_only=True)
    except OSError as error:
        raise InputError(
            f"cannot load the audio model {name}: give a local folder or a model already in the Hugging Face "
            f"cache ({str(error).splitlines()[0]})"
        ) from None
