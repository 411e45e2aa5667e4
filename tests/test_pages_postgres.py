"""The pages on PostgreSQL, configured the way Streamlit's docs say (`[connections.samples] url`
in the secrets) or by DIGITREC_SAMPLES_URL: app_pages.common picks the URL and digitrec never
sees st.secrets. Needs DIGITREC_TEST_POSTGRES_URL (skipped, saying why, without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from digitrec.store import SampleStore

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 120


def samples_page(secrets: dict | None = None) -> AppTest:
    app = AppTest.from_file(str(REPO / "app_pages" / "samples.py"), default_timeout=TIMEOUT)
    for name, value in (secrets or {}).items():
        app.secrets[name] = value
    return app.run()


def test_samples_page_reads_the_database_named_in_the_secrets(postgres_url, app_env):
    SampleStore(url=postgres_url).add(np.zeros((28, 28), np.float32), 4, predicted=4)
    app = samples_page({"connections": {"samples": {"url": postgres_url}}})
    assert not app.exception
    assert app.metric[0].value == "1"
    assert not app_env["samples"].exists()  # the SQLite file was not used


def test_samples_page_reads_the_database_named_in_the_environment(postgres_url, app_env, monkeypatch):
    SampleStore(url=postgres_url).add(np.zeros((28, 28), np.float32), 2)
    SampleStore(url=postgres_url).add(np.zeros((28, 28), np.float32), 3)
    monkeypatch.setenv("DIGITREC_SAMPLES_URL", postgres_url)
    app = samples_page()
    assert not app.exception and app.metric[0].value == "2"
    assert not app_env["samples"].exists()


def test_an_unreachable_database_is_reported_without_its_address(postgres_server, app_env):
    import sqlalchemy as sa

    url = sa.make_url(postgres_server).set(password="not-the-password")
    app = samples_page({"connections": {"samples": {"url": url.render_as_string(hide_password=False)}}})
    assert not app.exception
    (error,) = app.error
    assert "cannot be read" in error.value
    assert "not-the-password" not in error.value and url.host not in error.value
