"""``faceaffect analyze INPUT``: faces in an image, a folder, a video or a live stream -> table, summary,
embeddings, plots and an annotated video."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from faceaffect.cli.common import (
    ANALYSIS,
    RUNTIME,
    BatchSizeOption,
    DeviceOption,
    EngineOption,
    MaxImagePixelsOption,
    ModelOption,
    OfflineOption,
    QuietOption,
    ThreadsOption,
    app,
    progress_bar,
    report_skipped,
    runtime_options,
    say,
    stderr,
    user_errors,
)
from faceaffect.core.limits import raised_limits
from faceaffect.options import AnalyzerOptions
from faceaffect.video.decode import SourceKind

if TYPE_CHECKING:
    import numpy as np

    from faceaffect.analysis import Analyzer
    from faceaffect.core.types import FrameResult
    from faceaffect.render.video import AnnotatedVideo
    from faceaffect.results import AnalysisResult


class LiveSink:
    """What a live stream does with each frame as it comes: rows to stdout as JSON lines (when no table file
    is given), a window where a display exists, frames to the annotated video."""

    def __init__(self, analyzer: Analyzer, name: str, rows_to_stdout: bool, show: bool | None) -> None:
        from faceaffect.render.window import LiveWindow

        self.analyzer = analyzer
        self.name = name
        self.rows_to_stdout = rows_to_stdout
        self.exits = ExitStack()
        self.window = LiveWindow.open(f"faceaffect {name}") if show is not False else None
        if self.window is not None:
            self.exits.callback(self.window.close)
        elif show:
            say("[yellow]no display or GUI backend here: streaming headless[/yellow]")
        self.video: AnnotatedVideo | None = None

    def record(self, path: Path, fps: float | None) -> None:
        from faceaffect.render.video import AnnotatedVideo

        self.video = self.exits.enter_context(AnnotatedVideo(path, fps))

    def __call__(self, image: np.ndarray, frame: FrameResult) -> bool:
        from faceaffect.results import frames_table

        if self.rows_to_stdout and frame.faces:
            config = self.analyzer.recognizer.config
            rows = frames_table([frame], config.labels, config.name, self.name)
            sys.stdout.write(rows.to_json(orient="records", lines=True).rstrip("\n") + "\n")
            sys.stdout.flush()
        if self.video is not None:
            self.video.write(image, frame)
        if self.window is not None:
            self.window.show(image, frame)
            return not self.window.closed
        return True


def _check_outputs(output: Path | None, embeddings: Path | None, video: Path | None, plots: Path | None,
                   summary: Path | None, source: str) -> None:  # fmt: skip
    """Fail before any work when an output cannot be written (unknown format, no writable folder)."""
    from faceaffect.core.io import TABLE_FORMATS, check_writable
    from faceaffect.images import IMAGE_SUFFIXES
    from faceaffect.render.video import VIDEO_FORMATS
    from faceaffect.results import EMBEDDING_FORMATS

    for path, formats in ((output, TABLE_FORMATS), (summary, TABLE_FORMATS), (embeddings, EMBEDDING_FORMATS)):
        if path is not None:
            check_writable(path, formats)
    if plots is not None:
        check_writable(plots, folder=True)
    if video is not None:
        is_folder = Path(source).is_dir()
        is_image = Path(source).suffix.lower() in IMAGE_SUFFIXES and Path(source).is_file()
        check_writable(video, tuple(IMAGE_SUFFIXES if is_image else VIDEO_FORMATS), folder=is_folder)


def _report(result: AnalysisResult, outputs: list[Path]) -> None:
    faces = sum(len(frame.faces) for frame in result.frames)
    summary = result.summary()
    table = Table("source", "track", "frames", "dominant", "p", "valence", "arousal", title="summary")
    for row in summary.head(20).itertuples():
        signed = (
            "-" if value != value else f"{value:+.2f}" for value in (row.valence, row.arousal)
        )  # NaN: -
        table.add_row(escape(Path(row.source).name), str(row.track_id), str(row.frames), row.dominant,
                      f"{row.dominant_probability:.2f}", *signed)  # fmt: skip
    if len(summary):
        stderr.print(table)
    written = f"; wrote {escape(', '.join(map(str, outputs)))}" if outputs else ""
    say(f"frames {len(result)}, faces {faces}, tracks {len(summary)}{written}")


SourceArgument = Annotated[
    str,
    typer.Argument(metavar="INPUT", help="Image, folder of images, video, webcam index (0, 1, ...) or URL."),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Table (.csv, .parquet, .jsonl); omitted: CSV on stdout (live: JSON lines as frames come).",
    ),
]
SummaryOption = Annotated[Path | None, typer.Option(help="Per-track summary table (.csv, .parquet, .jsonl).")]
EmbeddingsOption = Annotated[
    Path | None, typer.Option(help="Embeddings, one per table row (.npy, .parquet).")
]
VideoOption = Annotated[
    Path | None,
    typer.Option(
        help="Annotated video (.mp4, .mov, .mkv); for an image an image file, for a folder a folder."
    ),
]
PlotsOption = Annotated[Path | None, typer.Option(help="Folder for expressions.png and valence_arousal.png.")]
DetectorOption = Annotated[str, typer.Option(help="Face detector: blazeface (offline) or dlib.")]
MinScoreOption = Annotated[float | None, typer.Option(help="Detector score threshold.")]
MinFaceOption = Annotated[float | None, typer.Option(help="Smallest face in pixels (shorter side).")]
MarginOption = Annotated[float, typer.Option(min=0, help="Grow boxes by this fraction per side to crop.")]
StrideOption = Annotated[int, typer.Option(min=1, help="Analyse every N-th video frame.")]
TargetFpsOption = Annotated[float | None, typer.Option(help="Analyse about this many frames per second.")]
MaxFramesOption = Annotated[int | None, typer.Option(min=1, help="Stop after this many frames.")]
DetectEveryOption = Annotated[int, typer.Option(min=1, help="Detect on every N-th frame; track in between.")]
SmallFaceEveryOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Videos: search for small faces (BlazeFace tiles) on every N-th detection, and on all while a "
        "tracked face is small (1: always).",
    ),
]
MaxGapOption = Annotated[int, typer.Option(min=0, help="Frames a tracked face may be missed (interpolated).")]
TrackIouOption = Annotated[float, typer.Option(help="Least IoU with a track's predicted box to continue it.")]
TrackScoreOption = Annotated[
    float, typer.Option(min=0, max=1, help="Report a track once a detection of it scores this much (0: all).")
]
SmoothFramesOption = Annotated[int, typer.Option(min=0, help="Centred moving mean over N frames per track.")]
SmoothSecondsOption = Annotated[float, typer.Option(min=0, help="Centred moving mean over S seconds.")]
ShowOption = Annotated[
    bool | None,
    typer.Option(
        "--show/--no-show", help="Live window for webcams and streams (default: if a display exists)."
    ),
]


@app.command("analyze")
@user_errors
def analyze_command(
    source: SourceArgument,
    output: OutputOption = None,
    summary: SummaryOption = None,
    embeddings: EmbeddingsOption = None,
    video: VideoOption = None,
    plots: PlotsOption = None,
    model: ModelOption = RUNTIME.model,
    detector: DetectorOption = ANALYSIS.detector,
    min_score: MinScoreOption = ANALYSIS.min_score,
    min_face_size: MinFaceOption = ANALYSIS.min_face_size,
    margin: MarginOption = ANALYSIS.margin,
    stride: StrideOption = ANALYSIS.stride,
    target_fps: TargetFpsOption = ANALYSIS.target_fps,
    max_frames: MaxFramesOption = ANALYSIS.max_frames,
    detect_every: DetectEveryOption = ANALYSIS.detect_every,
    max_gap: MaxGapOption = ANALYSIS.max_gap,
    small_face_every: SmallFaceEveryOption = ANALYSIS.small_face_every,
    track_iou: TrackIouOption = ANALYSIS.track_iou,
    min_track_score: TrackScoreOption = ANALYSIS.min_track_score,
    smooth_frames: SmoothFramesOption = ANALYSIS.smooth_frames,
    smooth_seconds: SmoothSecondsOption = ANALYSIS.smooth_seconds,
    show: ShowOption = None,
    device: DeviceOption = RUNTIME.device,
    engine: EngineOption = RUNTIME.engine,
    threads: ThreadsOption = RUNTIME.threads,
    batch_size: BatchSizeOption = RUNTIME.batch_size,
    offline: OfflineOption = False,
    max_image_pixels: MaxImagePixelsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Find faces, follow them across frames, and give each expression probabilities, valence and arousal."""
    from faceaffect.analysis import Analyzer
    from faceaffect.video.sources import open_source

    _check_outputs(output, embeddings, video, plots, summary, source)
    options = AnalyzerOptions(detector, min_score, min_face_size, margin, stride, target_fps, max_frames,
                              detect_every, max_gap, small_face_every, track_iou, min_track_score,
                              smooth_frames, smooth_seconds, embeddings=embeddings is not None)  # fmt: skip
    runtime = runtime_options(model, device, engine, threads, batch_size, offline)
    with raised_limits(max_image_pixels=max_image_pixels):
        frames = open_source(source, options.sampling)  # a missing input fails before a model loads
        analyzer = Analyzer(runtime=runtime, options=options)
        live = frames.kind == SourceKind.CAMERA
        sink = LiveSink(analyzer, frames.name, output is None, show) if live else None
        with ExitStack() as exits, progress_bar(frames.kind, quiet) as progress:
            if sink is not None:
                exits.enter_context(sink.exits)
                if video is not None:
                    sink.record(video, frames.fps)
            result = analyzer.analyze(frames, progress, on_frame=sink)
        _save(result, output, summary, embeddings, None if live else video, plots, quiet)


def _save(result: AnalysisResult, output: Path | None, summary: Path | None, embeddings: Path | None,
          video: Path | None, plots: Path | None, quiet: bool) -> None:  # fmt: skip
    report_skipped([failure.reason for failure in result.failures], kept=len(result.frames))
    written = [result.save(output)] if output is not None else []
    if output is None and result.kind != SourceKind.CAMERA:
        result.to_table().to_csv(sys.stdout, index=False)
    if summary is not None:
        written.append(result.save_summary(summary))
    if embeddings is not None:
        written.append(result.save_embeddings(embeddings))
    if plots is not None:
        written.extend(result.plot(plots))
    if video is not None:
        written.append(result.annotate(video))
    if not quiet:
        _report(result, written)
