"""Errors a user can cause, with messages meant to be shown as they are."""


class DigitrecError(Exception):
    """Base class for errors digitrec reports to users."""


class DataUnavailableError(DigitrecError):
    """A dataset (MNIST, pendigits) cannot be found or loaded."""


class ModelError(DigitrecError):
    """A model folder is missing, incomplete or corrupt."""


class TrainingBusyError(DigitrecError):
    """Another training job is already running on this server."""


class StoreError(DigitrecError):
    """The samples database cannot be opened or written.

    The message is for visitors: it never names the file, host, user or password. `detail`
    says where and what the driver said, for the server's log.
    """

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = message if detail is None else detail


class PermissionDeniedError(DigitrecError):
    """An admin action was attempted without the admin password."""


class UploadError(DigitrecError):
    """An uploaded file cannot be used as an image."""


class CanvasError(DigitrecError):
    """The drawing a browser sent is not a canvas PNG of the canvas's size."""


class StrokesError(DigitrecError, ValueError):
    """Stroke data that cannot be a drawing (too many strokes or points, not numbers)."""


class LimitError(DigitrecError):
    """A limit a visitor meets was reached: samples per session or in total, save rate."""


class TooManyAttemptsError(PermissionDeniedError):
    """Too many wrong admin passwords: wait before trying again."""


class SplitError(DigitrecError):
    """A drawing cannot be split into as many digits as a person typed as its reading."""
