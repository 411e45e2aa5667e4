"""The one-training lock across app replicas: a PostgreSQL advisory lock.

With one machine the lock is a file lock in the model folder (digitrec.jobs); with several
replicas sharing a PostgreSQL samples database it is `pg_try_advisory_lock` on a connection
of its own, held for as long as the training lives and released by closing it. PostgreSQL
drops a session's advisory locks when its connection ends, so a replica that dies frees the
lock: at once when its process ends (the kernel closes the socket), within about a minute
when its machine vanishes (the keepalives set below).
"""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import NullPool

from digitrec.errors import StoreError
from digitrec.store import parse_url

# "digitrec" in ASCII as a bigint: the training lock's key (digitrec.store's schema
# migrations use this + 1).
TRAINING_LOCK_KEY = 0x6469676974726563
# A lock connection whose peer vanished without closing it is dropped by the server after
# about idle + interval x count seconds.
KEEPALIVES = {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}


def is_postgres(url: str | None) -> bool:
    """True when `url` names a PostgreSQL database (the samples store's URL)."""
    return url is not None and parse_url(url).get_backend_name() == "postgresql"


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection held until `release()`."""

    def __init__(self, url: str, key: int = TRAINING_LOCK_KEY, timeout: float = 5.0):
        self.url, self.key, self.timeout = parse_url(url), key, timeout
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        self._guard = threading.Lock()

    def acquire(self) -> bool:
        """Take the lock without waiting: True if this object holds it now, False if another does.

        StoreError (naming no host or password) when the database cannot be reached.
        """
        with self._guard:
            if self._conn is not None:
                return True
            engine = sa.create_engine(self.url, poolclass=NullPool, connect_args={
                "connect_timeout": max(2, round(self.timeout)), "application_name": "digitrec training lock"})
            try:
                conn = engine.connect()
                try:
                    for name, value in KEEPALIVES.items():
                        conn.execute(sa.select(sa.func.set_config(name, value, False)))
                    taken = conn.execute(sa.select(sa.func.pg_try_advisory_lock(self.key))).scalar_one()
                    conn.commit()  # the lock is the session's: no transaction stays open
                except BaseException:
                    conn.close()
                    raise
            except sa_exc.SQLAlchemyError as error:
                engine.dispose()
                raise StoreError(
                    "the samples database's server cannot be reached to take the training lock:"
                    " try again in a moment",
                    detail=f"{self.url.render_as_string(hide_password=True)}: {error}") from error
            if not taken:
                conn.close()
                engine.dispose()
                return False
            self._engine, self._conn = engine, conn
            return True

    def release(self) -> None:
        """Let go of the lock (closing its connection ends it even if the unlock fails)."""
        with self._guard:
            conn, engine = self._conn, self._engine
            self._conn = self._engine = None
        if conn is None:
            return
        try:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
            conn.commit()
        except sa_exc.SQLAlchemyError:
            pass  # the connection is gone, and the lock with it
        finally:
            conn.close()
            engine.dispose()

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._conn is not None
