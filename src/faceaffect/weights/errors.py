"""The weights error family: each failure is one line saying what went wrong and what to do."""

from __future__ import annotations

from faceaffect.errors import FaceaffectError


class WeightsError(FaceaffectError):
    """Base of every failure to obtain, verify or read a weight file."""


class WeightsNotCachedError(WeightsError):
    """Offline mode and the file is not in the cache."""


class NetworkError(WeightsError):
    """The download failed below HTTP (DNS, refused connection, timeout, broken transfer)."""


class HTTPDownloadError(WeightsError):
    """The server answered with an HTTP error status."""


class ChecksumMismatchError(WeightsError):
    """A downloaded or cached file does not have the expected digest."""


class CheckpointError(WeightsError):
    """A weight file or saved model folder is missing, corrupt or does not fit the architecture."""


class UnsafeCheckpointError(WeightsError):
    """A pickle asks for a global outside the allow-list (it would run code on load)."""
