"""Pictures of results: faces drawn on frames, annotated videos and images, a live window, plots.

This layer depends on the result types only; ``AnalysisResult`` calls down into it.
"""

from faceaffect.render.draw import PALETTE, draw_faces
from faceaffect.render.video import VIDEO_FORMATS, AnnotatedVideo, annotate_images, annotate_video
from faceaffect.render.window import LiveWindow, has_display

__all__ = [
    "PALETTE",
    "VIDEO_FORMATS",
    "AnnotatedVideo",
    "LiveWindow",
    "annotate_images",
    "annotate_video",
    "draw_faces",
    "has_display",
]
