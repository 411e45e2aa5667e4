"""Two app replicas, for real: two `streamlit run` servers on one PostgreSQL database
(DIGITREC_SAMPLES_URL) and one model folder (as a shared volume would be), driven in headless
Chromium like the other browser tests. A sample saved through one is on the other's Samples
page; a promotion done on one is served by the other; two trainings started on the two at
the same instant: exactly one runs.

Needs PostgreSQL (DIGITREC_TEST_POSTGRES_URL, which .ci/run sets; skipped, saying why, without
it) and what tests/test_browser.py needs (Debian's chromium, playwright).
"""

from __future__ import annotations

import re
import shutil

import pytest

from tests import test_browser as ui
from tests.conftest import fresh_postgres_schema
from tests.test_browser import (
    ARTIFACTS,
    RERUN_TIMEOUT_MS,
    TIMEOUT_MS,
    VIEWPORT,
    YES_BUTTON,
    digit_strokes,
    draw,
    expect,
    metric,
    no_tracebacks,
    open_app,
    screenshotted_page,
    serve_app,
    wait_settled,
)

# The browser tests' fixtures, used here by name.
chromium_executable, browser, held_out_digits = ui.chromium_executable, ui.browser, ui.held_out_digits

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def replicas(postgres_server, tmp_path_factory, tiny_model):
    """Two servers, one database, one model folder (the tiny model active, a copy of it as a
    candidate to promote)."""
    from contextlib import ExitStack

    from digitrec import registry

    shared = tmp_path_factory.mktemp("shared-volume")
    models = shared / "models"
    models.mkdir()
    shutil.copytree(tiny_model, models / "tiny-a")
    shutil.copytree(tiny_model, models / "tiny-b")
    registry.set_active("tiny-a", models)
    with fresh_postgres_schema(postgres_server) as url, ExitStack() as stack:
        servers = [stack.enter_context(serve_app(tmp_path_factory.mktemp(f"replica-{name}"), models=models,
                                                 environment={"DIGITREC_SAMPLES_URL": url}))
                   for name in ("a", "b")]
        yield servers


@pytest.fixture()
def pages(browser, request):
    """One fresh browser page (own session) per replica."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield [stack.enter_context(screenshotted_page(
            browser.new_context(viewport=VIEWPORT, device_scale_factor=1), request, full_page=True))
            for _ in range(2)]


def test_a_sample_saved_on_one_replica_is_on_the_others_samples_page(replicas, pages, held_out_digits):
    one, other = replicas
    page_one, page_other = pages
    open_app(page_one, one.url)
    draw(page_one, digit_strokes(held_out_digits[6]))
    page_one.get_by_role("button", name=YES_BUTTON).click()
    saved = page_one.get_by_text(re.compile(r"Saved sample #\d+ as an? \d\."))
    expect(saved).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    sample_id, label = map(int, re.search(r"#(\d+) as an? (\d)", saved.inner_text()).groups())
    assert not one.samples_db.exists() and not other.samples_db.exists()  # no SQLite file anywhere

    open_app(page_other, other.url, "/samples")
    expect(metric(page_other, "Samples")).to_have_text("1", timeout=RERUN_TIMEOUT_MS)
    caption = page_other.locator('[data-testid="stMarkdownContainer"]').filter(has_text=f"#{sample_id} ·")
    expect(caption).to_contain_text(f"{label} (model read")
    no_tracebacks(page_other)


def test_a_promotion_on_one_replica_is_served_by_the_other(replicas, pages):
    from digitrec import registry

    one, other = replicas
    page_one, page_other = pages
    open_app(page_other, other.url)
    expect(page_other.get_by_text("Model tiny-a")).to_be_visible(timeout=RERUN_TIMEOUT_MS)

    open_app(page_one, one.url, "/models")
    page_one.locator('[data-testid="stSelectbox"]').first.click()
    page_one.get_by_role("option", name="tiny-b").click()
    wait_settled(page_one)
    page_one.get_by_role("button", name="Promote to active").click()
    expect(page_one.get_by_text("tiny-b is now active")).to_be_visible(timeout=RERUN_TIMEOUT_MS * 2)
    assert registry.active_version(one.models) == "tiny-b"

    open_app(page_other, other.url)  # the other replica's next run serves it
    expect(page_other.get_by_text("Model tiny-b")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    no_tracebacks(page_other)


def set_up_a_quick_training(page) -> None:
    """1 epoch on 1% of MNIST, no pen digits: a real run of a few seconds."""
    page.get_by_label("Epochs", exact=True).fill("1")
    share = page.locator('[data-testid="stSlider"]').filter(has_text="Share of MNIST").get_by_role("slider")
    share.focus()
    page.keyboard.press("Home")
    expect(share).to_have_attribute("aria-valuetext", "0.01")
    page.get_by_text("Pen digits", exact=True).click()
    wait_settled(page)


def test_two_trainings_started_at_once_on_two_replicas_exactly_one_runs(replicas, pages):
    one, other = replicas
    before = {path.name for path in one.models.iterdir()}
    for index, (page, replica) in enumerate(zip(pages, replicas)):
        open_app(page, replica.url, "/retrain")
        try:
            set_up_a_quick_training(page)
        except Exception:  # the fixture's screenshot shows one page only: keep both
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"replicas_retrain_{index}.png"), full_page=True)
            raise
    starts = [page.get_by_role("button", name="Start training") for page in pages]
    for start in starts:
        start.wait_for(state="visible")
    # Both clicks go out together (no waiting for either server's answer in between).
    for page in pages:
        page.evaluate("""() => [...document.querySelectorAll('button')]
                               .find(b => b.innerText.trim() === 'Start training')
                               .setAttribute('data-go', '1')""")
    pages[0].evaluate("() => setTimeout(() => document.querySelector('[data-go]').click(), 0)")
    pages[1].evaluate("() => setTimeout(() => document.querySelector('[data-go]').click(), 0)")
    refused = [page.get_by_text("another replica of this app is training a model") for page in pages]
    running = [page.locator('[data-testid="stProgress"]') for page in pages]
    for page in pages:
        page.wait_for_function(
            """() => document.querySelector('[data-testid="stProgress"]') !== null
                     || document.body.innerText.includes('another replica of this app is training')""",
            timeout=TIMEOUT_MS)
        wait_settled(page)
    outcomes = [("runs" if running[i].count() else "") + ("refused" if refused[i].count() else "")
                for i in range(2)]
    assert sorted(outcomes) == ["refused", "runs"], outcomes
    winner = pages[outcomes.index("runs")]
    finished = winner.get_by_text(re.compile(r"Your training (finished|stopped early): candidate"))
    expect(finished).to_be_visible(timeout=300_000)
    for page in pages:
        no_tracebacks(page)
    added = {path.name for path in one.models.iterdir()} - before
    assert len([name for name in added if not name.startswith(".")]) == 1, added
    for replica in replicas:  # sharing a database and a model folder logs no warning
        lines = replica.log.read_text(errors="replace").splitlines()
        assert not [line for line in lines if ui.LOG_PROBLEM.search(line)], lines[-40:]
