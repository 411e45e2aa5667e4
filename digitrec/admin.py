"""Guarded model actions: promote, rollback and delete need the admin password when one is set.

The check happens here, on every call, with the password the user typed: nothing a page
keeps in session state can stand in for it. Wrong guesses are bounded: a session (`client`)
gets PASSWORD_FAILURES_PER_SESSION a minute, the whole server PASSWORD_FAILURES_PER_MINUTE;
beyond them every attempt is refused, right password or not, until the minute has passed.
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path

from digitrec import registry
from digitrec.errors import PermissionDeniedError, TooManyAttemptsError
from digitrec.limits import PASSWORD_FAILURES_PER_MINUTE, PASSWORD_FAILURES_PER_SESSION, PASSWORD_LOCKOUT_S

PASSWORD_VARIABLE = "DIGITREC_ADMIN_PASSWORD"


def configured_password(secret: str | None = None) -> str | None:
    """The admin password: the given secret (st.secrets on the page), else the env variable."""
    value = secret if secret not in (None, "") else os.environ.get(PASSWORD_VARIABLE)
    # TOML reads `admin_password = 12345` as a number: compare it as the text typed.
    return str(value) if value not in (None, "") else None


class PasswordAttempts:
    """Wrong admin passwords of the last PASSWORD_LOCKOUT_S seconds, per client and in all.

    Memory is bounded: at most `max_clients` clients are remembered (the oldest forgotten).
    """

    def __init__(self, per_client: int = PASSWORD_FAILURES_PER_SESSION,
                 in_all: int = PASSWORD_FAILURES_PER_MINUTE, window_s: float = PASSWORD_LOCKOUT_S,
                 max_clients: int = 1024, clock=time.monotonic) -> None:
        self.per_client, self.in_all, self.window_s = per_client, in_all, window_s
        self.max_clients, self.clock = max_clients, clock
        self._lock = threading.Lock()
        self._all: deque[float] = deque(maxlen=in_all)
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, client: str | None) -> None:
        """Raise TooManyAttemptsError while this client, or the server, is locked out."""
        with self._lock:
            now = self.clock()
            waits = [self._wait(self._all, self.in_all, now)]
            if client is not None and client in self._clients:
                waits.append(self._wait(self._clients[client], self.per_client, now))
        wait = max(waits)
        if wait > 0:
            raise TooManyAttemptsError(f"too many wrong admin passwords: try again in "
                                       f"{max(1, round(wait))} s")

    def failed(self, client: str | None) -> None:
        """Count one wrong password."""
        with self._lock:
            now = self.clock()
            self._all.append(now)
            if client is None:
                return
            times = self._clients.pop(client, None) or deque(maxlen=self.per_client)
            times.append(now)
            self._clients[client] = times  # most recent last
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)

    def succeeded(self, client: str | None) -> None:
        """Forget this client's wrong guesses (the server-wide ones stay)."""
        with self._lock:
            self._clients.pop(client, None)

    def reset(self) -> None:
        with self._lock:
            self._all.clear()
            self._clients.clear()

    def _wait(self, times: deque, most: int, now: float) -> float:
        """Seconds until fewer than `most` failures lie within the window (0: not locked)."""
        if len(times) < most:
            return 0.0
        return self.window_s - (now - times[-most])


ATTEMPTS = PasswordAttempts()  # one per server process


def authorize(given: str | None, configured: str | None, client: str | None = None) -> None:
    """Raise PermissionDeniedError unless no password is configured or `given` matches it.

    `client` names the session guessing (None: only the server-wide bound applies). An
    empty password is no guess and is not counted; TooManyAttemptsError while locked out.
    """
    if configured is None:
        return
    if not isinstance(given, str) or given == "":
        raise PermissionDeniedError("wrong or missing admin password")
    ATTEMPTS.check(client)
    if not hmac.compare_digest(given.encode(), configured.encode()):
        ATTEMPTS.failed(client)
        raise PermissionDeniedError("wrong or missing admin password")
    ATTEMPTS.succeeded(client)


def promote(version: str, given: str | None, configured: str | None,
            directory: Path | None = None, client: str | None = None) -> None:
    """Make a model version active, if authorized."""
    authorize(given, configured, client)
    registry.set_active(version, directory)


def rollback(given: str | None, configured: str | None, directory: Path | None = None,
             client: str | None = None) -> str:
    """Re-activate the previously active model, if authorized; return its version."""
    authorize(given, configured, client)
    return registry.rollback(directory)


def delete(version: str, given: str | None, configured: str | None,
           directory: Path | None = None, client: str | None = None) -> None:
    """Delete a non-active model version, if authorized."""
    authorize(given, configured, client)
    registry.delete_model(version, directory)
