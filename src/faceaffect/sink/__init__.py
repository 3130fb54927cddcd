"""Where analysis results go as they are made: the :class:`Sink` protocol, files written incrementally
(:class:`FileSink`) and the resume state of an interrupted run (:class:`ResumeState`)."""

from faceaffect.sink.base import Mark, RunEnd, RunInfo
from faceaffect.sink.files import FileSink
from faceaffect.sink.protocol import Sink
from faceaffect.sink.resume import ResumeState, state_path

__all__ = ["FileSink", "Mark", "ResumeState", "RunEnd", "RunInfo", "Sink", "state_path"]
