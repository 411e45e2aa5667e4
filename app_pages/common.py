"""What every page shares: the cached Recognizer and the samples store (layout helpers only)."""

from pathlib import Path

import streamlit as st

from digitrec import Recognizer, registry
from digitrec.store import SampleStore, default_path, default_url


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load_recognizer(directory: str, serving_key: tuple):
    return Recognizer.load_serving(Path(directory))


def recognizer(warn: bool = True) -> Recognizer:
    """The active model, loaded once per process and shared by every session.

    Keyed by the pointer files and the active model's files, so after a promotion, or once
    a lost pointer or a broken model file is repaired, the next rerun of any page picks up
    the right model. If the active model is broken, the last promoted good one is served
    and the page says why.
    """
    directory = registry.models_dir()
    loaded, warning = _load_recognizer(str(directory), registry.serving_key(directory))
    if warning and warn:  # warn=False: a fragment rerun, the page already said it
        st.warning(warning, icon=":material/warning:")
    return loaded


def samples_path() -> str:
    """The samples database: st.secrets['samples_db'], else DIGITREC_SAMPLES_DB, else data/."""
    return str(secret("samples_db") or default_path())


def samples_url() -> str | None:
    """PostgreSQL shared by several replicas: Streamlit's `[connections.samples] url` in the
    secrets, else DIGITREC_SAMPLES_URL; None means the SQLite file (samples_path)."""
    try:
        url = (secret("connections") or {}).get("samples", {}).get("url")
    except AttributeError:  # `connections` or `connections.samples` is not a table
        url = None
    return url or default_url()


MY_SAMPLES = "my_samples"  # ids of the samples this session saved: it may delete them without a password


def saved_by_this_session(sample_id: int) -> None:
    st.session_state.setdefault(MY_SAMPLES, set()).add(sample_id)


def store() -> SampleStore:
    """The samples store (a cheap object: a SQLite connection, or a pooled PostgreSQL one, per call)."""
    url = samples_url()
    return SampleStore(url=url) if url else SampleStore(samples_path())


def secret(name: str):
    """A value from st.secrets, or None when there is none (or no secrets file at all)."""
    try:
        return st.secrets.get(name)
    except FileNotFoundError:
        return None


def admin_password():
    """The configured admin password (st.secrets['admin_password'] or DIGITREC_ADMIN_PASSWORD)."""
    from digitrec.admin import configured_password

    return configured_password(secret("admin_password"))
