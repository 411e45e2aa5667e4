"""Guarded model actions: promote, rollback and delete need the admin password when one is set.

The check happens here, on every call, with the password the user typed: nothing a page
keeps in session state can stand in for it.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from digitrec import registry
from digitrec.errors import PermissionDeniedError

PASSWORD_VARIABLE = "DIGITREC_ADMIN_PASSWORD"


def configured_password(secret: str | None = None) -> str | None:
    """The admin password: the given secret (st.secrets on the page), else the env variable."""
    value = secret if secret not in (None, "") else os.environ.get(PASSWORD_VARIABLE)
    # TOML reads `admin_password = 12345` as a number: compare it as the text typed.
    return str(value) if value not in (None, "") else None


def authorize(given: str | None, configured: str | None) -> None:
    """Raise PermissionDeniedError unless no password is configured or `given` matches it."""
    if configured is None:
        return
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), configured.encode()):
        raise PermissionDeniedError("wrong or missing admin password")


def promote(version: str, given: str | None, configured: str | None,
            directory: Path | None = None) -> None:
    """Make a model version active, if authorized."""
    authorize(given, configured)
    registry.set_active(version, directory)


def rollback(given: str | None, configured: str | None, directory: Path | None = None) -> str:
    """Re-activate the previously active model, if authorized; return its version."""
    authorize(given, configured)
    return registry.rollback(directory)


def delete(version: str, given: str | None, configured: str | None,
           directory: Path | None = None) -> None:
    """Delete a non-active model version, if authorized."""
    authorize(given, configured)
    registry.delete_model(version, directory)
