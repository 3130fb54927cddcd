"""Face crops in, typed predictions out: preprocessing, batching and the chosen engine in one object."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from faceaffect.core.numeric import softmax
from faceaffect.core.progress import Progress
from faceaffect.core.types import FacePrediction
from faceaffect.hub.registry import ModelConfig
from faceaffect.images import ImageLike
from faceaffect.options import RuntimeOptions, with_settings
from faceaffect.preprocess import preprocess
from faceaffect.runtime.base import Engine, EngineOutput
from faceaffect.runtime.factory import create_engine
from faceaffect.video.decode import InputFailure, SourceKind
from faceaffect.video.sources import ImageFiles

if TYPE_CHECKING:
    from faceaffect.models.multitask import MultiTaskModel


CropFailure = InputFailure  # its name in faceaffect 0.1


class Recognizer:
    """Predict expressions, valence and arousal for RGB face crops.

    ``model`` is a registered name, a saved model folder, or a ``MultiTaskModel`` (default:
    ``options.model``). ``options`` (:class:`~faceaffect.options.RuntimeOptions`: device, engine, threads,
    batch size, offline, cores) say how it runs; ``settings`` change fields of it by name. Batches are
    preprocessed and run on ``engine.concurrency`` threads at once; a small input is split so every thread
    gets a share.

    >>> recognizer = Recognizer("enet_b0_8_va_mtl")  # doctest: +SKIP
    >>> recognizer.predict([crop])[0].top_label  # doctest: +SKIP
    'Happiness'
    """

    def __init__(
        self,
        model: str | Path | MultiTaskModel | None = None,
        *,
        options: RuntimeOptions | None = None,
        **settings: Any,
    ) -> None:
        options = with_settings(options or RuntimeOptions(), settings)
        if isinstance(model, str | Path):
            options = options.replace(model=str(model))
        self.options = options
        self.engine: Engine = create_engine(
            options.model if model is None or isinstance(model, str | Path) else model,
            engine=options.engine,
            device=options.device,
            offline=options.offline,
            threads=options.threads,
            cores=options.cores,
        )
        self.batch_size = options.batch_size
        self._pool: ThreadPoolExecutor | None = None

    @property
    def config(self) -> ModelConfig:
        return self.engine.config

    @property
    def labels(self) -> tuple[str, ...]:
        return self.config.labels

    def run(self, crops: Sequence[ImageLike], *, embeddings: bool = False) -> EngineOutput:
        """Raw outputs for all crops, in batches of at most ``batch_size`` (and of the engine's preferred
        size), several in flight at once."""
        workers = max(1, getattr(self.engine, "concurrency", 1))
        preferred = getattr(self.engine, "preferred_batch", None) or self.batch_size
        size = min(self.batch_size, preferred, max(1, -(-len(crops) // workers)))
        chunks = [crops[start : start + size] for start in range(0, len(crops), size)]

        def work(chunk: Sequence[ImageLike]) -> EngineOutput:
            return self.engine.run(preprocess(chunk, self.config), with_embedding=embeddings)

        if not chunks:
            return work([])
        if workers == 1 or len(chunks) == 1:
            return _concatenate([work(chunk) for chunk in chunks])
        if self._pool is None:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="faceaffect-recognizer")
        return _concatenate(list(self._pool.map(work, chunks)))

    def predict(self, crops: Sequence[ImageLike], *, embeddings: bool = False) -> list[FacePrediction]:
        """One FacePrediction per crop (probabilities over ``labels``, VA clipped to [-1, 1])."""
        out = self.run(crops, embeddings=embeddings)
        probabilities = softmax(out.logits.astype(np.float64))
        va = None if out.valence_arousal is None else np.clip(out.valence_arousal, -1.0, 1.0)
        return [
            FacePrediction(
                labels=self.labels,
                probabilities=probabilities[i],
                logits=out.logits[i],
                valence=None if va is None else float(va[i, 0]),
                arousal=None if va is None else float(va[i, 1]),
                embedding=None if out.embedding is None else out.embedding[i],
            )
            for i in range(len(out.logits))
        ]

    def predict_files(
        self, paths: Iterable[str | Path], *, embeddings: bool = False, progress: Progress | None = None
    ) -> tuple[list[tuple[str, FacePrediction]], list[InputFailure]]:
        """(path, prediction) of each crop image file, read and predicted batch by batch; unreadable files
        are reported, not fatal."""
        names = [str(path) for path in paths]
        images = ImageFiles([Path(name) for name in names], "crops", SourceKind.IMAGES)
        frames = iter(images)
        results: list[tuple[str, FacePrediction]] = []
        while batch := list(islice(frames, self.batch_size)):
            predictions = self.predict([frame.image for frame in batch], embeddings=embeddings)
            results.extend(zip([names[frame.index] for frame in batch], predictions, strict=True))
            if progress is not None:
                progress(len(results) + len(images.failures), len(names))
        if progress is not None:
            progress(len(names), len(names))  # also when the last files could not be read
        return results, images.failures


def _concatenate(outputs: list[EngineOutput]) -> EngineOutput:
    def join(arrays: list[np.ndarray | None]) -> np.ndarray | None:
        return None if arrays[0] is None else np.concatenate(arrays)

    return EngineOutput(
        logits=np.concatenate([o.logits for o in outputs]),
        valence_arousal=join([o.valence_arousal for o in outputs]),
        embedding=join([o.embedding for o in outputs]),
    )
