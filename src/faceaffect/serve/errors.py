"""What goes wrong in a request, as HTTP status codes: the service's own errors, and the library's."""

from __future__ import annotations

from faceaffect.core.errors import FaceaffectError, LimitError


class RequestError(FaceaffectError):
    """A request the service refuses; ``status`` is its HTTP status code."""

    status = 400


class Unauthorized(RequestError):
    status = 401


class NotFound(RequestError):
    status = 404


class UploadStalled(RequestError):
    status = 408


class NotReady(RequestError):
    """The job has not finished (or failed), so its outputs do not exist yet."""

    status = 409


class Unprocessable(RequestError):
    """Well-formed, but the options or outputs asked for are not valid."""

    status = 422


class TooLarge(RequestError):
    status = 413


class UnsupportedMedia(RequestError):
    status = 415


class NoSpace(RequestError):
    """The upload cannot be stored (the disk of the state folder is full)."""

    status = 507


class Busy(RequestError):
    """The queue is full: try again after ``retry_after`` seconds."""

    status = 503
    retry_after = 2


def status_of(error: FaceaffectError) -> int:
    """The HTTP status of an error: a limit (pixels, bytes) 413, any other input or option mistake 422."""
    if isinstance(error, RequestError):
        return error.status
    return 413 if isinstance(error, LimitError) else 422
