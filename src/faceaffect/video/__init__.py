"""Video: decoding (files, cameras, streams), face tracking across frames, gap filling and smoothing."""

from faceaffect.video.decode import DecodedFrame, Sampling, SourceKind, VideoReader, camera_input

__all__ = ["DecodedFrame", "Sampling", "SourceKind", "VideoReader", "camera_input"]
