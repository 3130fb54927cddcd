"""The exception family: every user-facing failure is a FaceaffectError with a one-line message."""

from __future__ import annotations


class FaceaffectError(Exception):
    """Base of every error caused by input, configuration or environment (not by a bug)."""


class InputError(FaceaffectError):
    """An input file or array cannot be used (missing, unreadable, wrong shape or type)."""


class UnknownModelError(FaceaffectError, ValueError):
    """A model name that is neither registered nor a saved model folder."""
