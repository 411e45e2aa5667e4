"""Every limit a visitor meets on the public app, in one place (SECURITY.md lists them).

Upload limits live with the upload decoder (digitrec.upload: MAX_UPLOAD_BYTES, MAX_PIXELS)
and training limits with the training settings (digitrec.config.LIMITS).
"""

from __future__ import annotations

import time
from collections import deque

from digitrec.data import NUMBER_CANVAS
from digitrec.errors import LimitError

# ---- drawings the browser sends ---------------------------------------------------------
# The largest canvas on the Draw page (Number mode) in CSS pixels, width x height.
MAX_DRAWING_SIZE = NUMBER_CANVAS
# The canvas PNG is drawn at the screen's devicePixelRatio (phones: up to 3-4).
MAX_CANVAS_SCALE = 4
MAX_CANVAS_BYTES = 4 * 1024 * 1024  # a real drawing at scale 4 is a few hundred KB

# ---- saved samples ------------------------------------------------------------------------
# The drawing stored with a sample is re-encoded as PNG, at most MAX_DRAWING_SIZE, and halved
# until it is at most this many bytes (a canvas drawing is 5-20 KB).
MAX_STORED_DRAWING_BYTES = 64 * 1024
MAX_SAMPLES_TOTAL = 10_000  # with the drawing bound: at most about 700 MB of database
MAX_SAMPLES_PER_SESSION = 200
SAVES_PER_MINUTE = 20  # per session

# ---- personal examples (digitrec.personal) --------------------------------------------------
MAX_PERSONAL_EXAMPLES = 200  # per person, in a session and under a profile name: the newest kept
MAX_PERSONAL_TOTAL = 20_000  # all profiles together (each at most one bounded drawing)
MAX_STORED_STROKE_POINTS = 600  # a stored example's strokes are thinned to this many points

# ---- admin password -----------------------------------------------------------------------
PASSWORD_FAILURES_PER_SESSION = 5  # then that session waits PASSWORD_LOCKOUT_S
PASSWORD_LOCKOUT_S = 60.0
PASSWORD_FAILURES_PER_MINUTE = 20  # all sessions together; beyond it every attempt waits


class SaveQuota:
    """One session's saves: at most MAX_SAMPLES_PER_SESSION, and SAVES_PER_MINUTE in any minute.

    Kept in the session's state by the page; `check()` before saving, `record()` after.
    """

    def __init__(self, per_session: int = MAX_SAMPLES_PER_SESSION,
                 per_minute: int = SAVES_PER_MINUTE, clock=time.monotonic) -> None:
        self.per_session = per_session
        self.per_minute = per_minute
        self.clock = clock
        self.saved = 0
        self._recent: deque[float] = deque(maxlen=max(per_minute, 1))

    def check(self) -> None:
        """Raise LimitError if this session may not save now."""
        if self.saved >= self.per_session:
            raise LimitError(f"This session has saved {self.saved} samples, the most one session "
                             "may save.")
        now = self.clock()
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        if len(self._recent) >= self.per_minute:
            wait = 60.0 - (now - self._recent[0])
            raise LimitError(f"At most {self.per_minute} samples a minute can be saved; "
                             f"please wait {max(1, round(wait))} s.")

    def record(self) -> None:
        """Count one save."""
        self.saved += 1
        self._recent.append(self.clock())


# ---- names ----------------------------------------------------------------------------------
MAX_NAME_CHARS = 40
NAME_PUNCTUATION = " -.'"


def visitor_name(text) -> str:
    """A name a visitor typed, fit to show other visitors: letters, digits, spaces and -.' only.

    Everything Markdown or HTML could read as a link, an image or markup is dropped; pages
    still show the result as plain text (inline code). "" if nothing is left.
    """
    kept = "".join(char for char in str(text) if char.isalnum() or char in NAME_PUNCTUATION)
    return " ".join(kept.split())[:MAX_NAME_CHARS].strip()
