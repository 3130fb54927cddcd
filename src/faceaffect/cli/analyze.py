"""``faceaffect analyze INPUT``: faces in an image, a folder, a video or a live stream -> table, summary,
embeddings, plots and an annotated video."""

from __future__ import annotations

import signal
from contextlib import ExitStack, closing
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
    MaxFramePixelsOption,
    MaxImagePixelsOption,
    ModelOption,
    OfflineOption,
    QuietOption,
    ThreadsOption,
    app,
    one_line,
    progress_bar,
    report_skipped,
    runtime_options,
    say,
    stderr,
    user_errors,
)
from faceaffect.core.limits import raised_limits
from faceaffect.core.signals import Interrupted, stop_on_signals
from faceaffect.options import AnalyzerOptions
from faceaffect.video.decode import SourceKind

if TYPE_CHECKING:
    import numpy as np

    from faceaffect.core.types import FrameResult
    from faceaffect.sink import FileSink, RunEnd


class LiveDisplay:
    """A window of annotated frames for webcams and streams, where a display exists; closing it stops."""

    def __init__(self, name: str, show: bool | None) -> None:
        from faceaffect.render.window import LiveWindow

        self.window = LiveWindow.open(f"faceaffect {name}") if show is not False else None
        if self.window is None and show:
            say("[yellow]no display or GUI backend here: streaming headless[/yellow]")

    def __call__(self, image: np.ndarray, frame: FrameResult) -> bool:
        if self.window is None:
            return True
        self.window.show(image, frame)
        return not self.window.closed

    def close(self) -> None:
        if self.window is not None:
            self.window.close()


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


def _report(sink: FileSink, end: RunEnd, name: str, quiet: bool) -> None:
    """Warnings (files skipped, decoding faults), then, unless quiet, the summary and one line of counts."""
    report_skipped([failure.reason for failure in end.failures], kept=sink.frames)
    for line in end.report.messages(name) if end.report is not None else []:
        say(f"[yellow]warning:[/yellow] {escape(one_line(line))}")
    if quiet:
        return
    summary = sink.summary.table(end.report)
    table = Table("source", "track", "frames", "dominant", "p", "valence", "arousal", title="summary")
    for row in summary.head(20).itertuples():
        signed = (
            "-" if value != value else f"{value:+.2f}" for value in (row.valence, row.arousal)
        )  # NaN: -
        table.add_row(escape(Path(row.source).name), str(row.track_id), str(row.frames), row.dominant,
                      f"{row.dominant_probability:.2f}", *signed)  # fmt: skip
    if len(summary):
        stderr.print(table)
    resumed = f" (resumed after frame {sink.resumed.mark.index})" if sink.resumed is not None else ""
    written = f"; wrote {escape(', '.join(map(str, sink.written)))}" if sink.written else ""
    say(f"frames {sink.frames}{resumed}, faces {sink.rows}, tracks {len(summary)}{written}")


def _stopped(stop: Interrupted, sink: FileSink | None, output: Path | None) -> typer.Exit:
    """One line for an interrupted run: what was kept and how to go on; the exit code of the signal."""
    from faceaffect.sink import state_path

    name = signal.Signals(stop.signum).name
    kept = escape(str(output))
    if sink is None or not sink.frames:
        say(f"interrupted ({name}) before any frame was finished; nothing written")
    elif output is None:
        say(f"interrupted ({name}) after {sink.frames} frames")
    elif state_path(output).exists():
        say(f"interrupted ({name}): {sink.frames} frames kept in {kept}; run the same command with --resume "
            "to continue")  # fmt: skip
    else:
        say(f"interrupted ({name}): {sink.frames} frames kept in {kept}")
    return typer.Exit(stop.exit_code)


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
ResumeOption = Annotated[
    bool,
    typer.Option(
        help="Continue the interrupted run that was writing the table (-o): from the first unfinished frame "
        "of a video, or image of a folder; the same rows as one uninterrupted run."
    ),
]
OpenTimeoutOption = Annotated[
    float, typer.Option(min=0.001, help="Seconds a camera or stream may take to answer.")
]
ReadTimeoutOption = Annotated[
    float, typer.Option(min=0.001, help="Seconds a camera or stream may go without data.")
]
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
    resume: ResumeOption = False,
    open_timeout: OpenTimeoutOption = ANALYSIS.open_timeout,
    read_timeout: ReadTimeoutOption = ANALYSIS.read_timeout,
    show: ShowOption = None,
    device: DeviceOption = RUNTIME.device,
    engine: EngineOption = RUNTIME.engine,
    threads: ThreadsOption = RUNTIME.threads,
    batch_size: BatchSizeOption = RUNTIME.batch_size,
    offline: OfflineOption = False,
    max_image_pixels: MaxImagePixelsOption = None,
    max_frame_pixels: MaxFramePixelsOption = None,
    quiet: QuietOption = False,
) -> None:
    """Find faces, follow them across frames, and give each expression probabilities, valence and arousal.

    Results are written as they are made. Ctrl-C or SIGTERM keeps every finished frame (exit 130 / 143);
    --resume continues from there."""
    from faceaffect.analysis import Analyzer
    from faceaffect.sink import FileSink, state_path
    from faceaffect.video.sources import open_source

    _check_outputs(output, embeddings, video, plots, summary, source)
    options = AnalyzerOptions(detector, min_score, min_face_size, margin, stride, target_fps, max_frames,
                              detect_every, max_gap, small_face_every, track_iou, min_track_score,
                              smooth_frames, smooth_seconds, embeddings is not None, open_timeout,
                              read_timeout)  # fmt: skip
    runtime = runtime_options(model, device, engine, threads, batch_size, offline)
    sink = None
    with (
        stop_on_signals(),
        raised_limits(max_image_pixels=max_image_pixels, max_frame_pixels=max_frame_pixels),
        ExitStack() as exits,
    ):
        try:
            frames = open_source(source, options.sampling, options.timeouts)  # fails before a model loads
            analyzer = Analyzer(runtime=runtime, options=options)
            live = frames.kind == SourceKind.CAMERA
            sink = FileSink(output, summary=summary, embeddings=embeddings, video=video, plots=plots,
                            json_lines=live, resume=resume)  # fmt: skip
            if resume and output is not None and not state_path(output).exists():
                say(f"nothing to resume for {escape(str(output))}: analysing from the start")
            display = exits.enter_context(closing(LiveDisplay(frames.name, show))) if live else None
            with progress_bar(frames.kind, quiet) as progress:
                end = analyzer.run(frames, sink, progress, on_frame=display)
        except Interrupted as stop:
            raise _stopped(stop, sink, output) from None
    _report(sink, end, frames.name, quiet)
