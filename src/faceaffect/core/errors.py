"""The exception family: every user-facing failure is a FaceaffectError with a one-line message."""

from __future__ import annotations


class FaceaffectError(Exception):
    """Base of every error caused by input, configuration or environment (not by a bug)."""


class InputError(FaceaffectError):
    """An input file or array cannot be used (missing, unreadable, wrong shape or type)."""


class LimitError(InputError):
    """An input beyond a size limit (pixels of an image or of a video frame): refused before it is decoded."""


class UnknownModelError(FaceaffectError, ValueError):
    """A model name that is neither registered nor a saved model folder."""


class WeightsError(FaceaffectError):
    """Base of every failure to obtain, verify or read a weight file."""


class WeightsNotCachedError(WeightsError):
    """Offline mode and the file is not in the cache."""


class NetworkError(WeightsError):
    """The download failed below HTTP (DNS, refused connection, timeout, broken transfer)."""


class HTTPDownloadError(WeightsError):
    """The server answered with an HTTP error status."""


class DownloadTooLargeError(WeightsError):
    """A download is (or would be) larger than expected, than the download limit or than the free disk."""


class ChecksumMismatchError(WeightsError):
    """A downloaded or cached file does not have the expected digest."""


class CheckpointError(WeightsError):
    """A weight file or saved model folder is missing, corrupt or does not fit the architecture."""


class UnsafeCheckpointError(WeightsError):
    """A pickle asks for a global outside the allow-list (it would run code on load)."""
