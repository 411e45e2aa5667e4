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
    """The samples database cannot be opened or written."""


class PermissionDeniedError(DigitrecError):
    """An admin action was attempted without the admin password."""
