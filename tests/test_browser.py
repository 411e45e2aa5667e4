"""Browser tests: the real app in headless Chromium, driven like a person with a mouse.

They start `streamlit run streamlit_app.py` on a free port with its own samples database and
model folder (in a temporary directory), open pages in Debian's chromium through Playwright
and draw real pen trajectories (pendigits, writers the model never trained on) on the canvas.

Requirements: `shutil.which("chromium")` (never `playwright install`) and the `playwright`
package. Without them the module is skipped, except with CI=true, where it fails: CI must
run these tests. Without a committed model in models/ the module is skipped too.

DIGITREC_TEST_MODELS_SOURCE=/some/models (a folder with an ACTIVE file and the model folder
it names) makes the app serve that model instead of the committed one: handy while no model
is committed yet, or to try the tests against a freshly trained one.

Each test leaves a screenshot of its final state in artifacts/browser/<test name>.png; the
drawing test also refreshes docs/screenshot-draw.png (shown in the README).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin, urlparse

import numpy as np
import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # reported by the chromium_executable fixture (skip, or fail on CI)
    sync_playwright = None
    PlaywrightError = PlaywrightTimeout = Exception

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts" / "browser"
# The README's picture is refreshed only when asked (DIGITREC_UPDATE_DOCS=1), so a test run
# leaves the tracked file alone; the same picture always goes to artifacts/browser/.
DOCS_SCREENSHOT = (REPO / "docs" / "screenshot-draw.png" if os.environ.get("DIGITREC_UPDATE_DOCS") == "1"
                   else REPO / "artifacts" / "browser" / "screenshot-draw.png")
DOCS_PHONE_SCREENSHOT = DOCS_SCREENSHOT.with_name("screenshot-phone.png")  # the phone's, likewise
DOCS_LABEL = 2  # the digit the README's screenshot shows, when the model reads it right
MODELS_SOURCE_VARIABLE = "DIGITREC_TEST_MODELS_SOURCE"
VIEWPORT = {"width": 1400, "height": 1000}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]

# Generous: two cores, and a training job may be running beside the tests.
STARTUP_TIMEOUT_S = 60
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TIMEOUT_MS = 60_000
RERUN_TIMEOUT_MS = 45_000

CANVAS = "canvas.upper-canvas"  # fabric's event layer, inside the component's open shadow root
# Where fabric paints the strokes (the component keeps a background image on another lower-canvas).
INK_LAYER = "canvas.lower-canvas:not(.dc-background-canvas)"
PROMPT = "Draw a digit in the box — the answer appears as soon as you lift the pen."
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
HELD_OUT_WRITERS = range(21, 31)
NUMBER_LABELS = (4, 2, 7)  # the number drawn in Number mode
CORRECTION_CHOICES = "No, the right digit is"
YES_BUTTON = re.compile(r"Yes, it is an? \d\b")
PEN_RADIUS = 9  # the app's default pen is 18 px wide  # never used for training (digitrec.data.split_writers)

# A signature of what the result area shows: changes with every rerun that read a new drawing
# (st.image URLs are content hashes), so waiting for it to change waits for *this* stroke's run.
RESULT_SIGNATURE_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]') || document;
  const parts = [];
  main.querySelectorAll('[data-testid="stImage"] img').forEach(e => parts.push(e.src));
  main.querySelectorAll('[data-testid="stMetricValue"]').forEach(e => parts.push(e.innerText));
  main.querySelectorAll('[data-testid="stAlert"]').forEach(e => parts.push(e.innerText));
  return parts.join('|');
}"""
SETTLED_JS = """() => document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]')
  !== null && document.querySelector('[data-stale="true"]') === null"""
INK_PIXELS_JS = """canvas => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
  return count;
}"""
# Whether the pen reaches the canvas at (x, y): the element under the point, through shadow roots.
HITS_CANVAS_JS = """(canvas, [x, y]) => {
  let element = document.elementFromPoint(x, y);
  while (element && element.shadowRoot) {
    const inner = element.shadowRoot.elementFromPoint(x, y);
    if (!inner || inner === element) break;
    element = inner;
  }
  return element === canvas;
}"""


def _skip_or_fail(reason: str):
    """Skip, or fail where CI=true: CI must run the browser tests."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def chromium_executable() -> str:
    """Debian's chromium and the playwright package, checked before anything else starts."""
    executable = shutil.which("chromium")
    if executable is None:
        _skip_or_fail("chromium is not installed (apt-get install chromium)")
    if sync_playwright is None:
        _skip_or_fail("the playwright package is not installed (pip install -r requirements-dev.txt)")
    return executable


@pytest.fixture(scope="module")
def browser(chromium_executable):
    """Debian's chromium, headless, for the whole module."""
    executable = chromium_executable
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _seed_models(target: Path) -> None:
    """Give the app a model: DIGITREC_TEST_MODELS_SOURCE copied in, else the app's own seeding."""
    source = os.environ.get(MODELS_SOURCE_VARIABLE)
    if source:
        if not (Path(source) / "ACTIVE").is_file():
            pytest.fail(f"{MODELS_SOURCE_VARIABLE}={source} has no ACTIVE file", pytrace=False)
        shutil.copytree(source, target, dirs_exist_ok=True)
        return
    from digitrec import registry

    if registry.active_version(registry.REPO_MODELS, required=False) is None:
        pytest.skip("no committed model in models/ (set DIGITREC_TEST_MODELS_SOURCE to use another)")
    # Nothing to do: an empty DIGITREC_MODELS_DIR is seeded from models/ by the app itself.


def _health(url: str) -> str | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
            return response.read().decode().strip()
    except OSError:
        return None


@contextmanager
def serve_app(folder: Path, models: Path | None = None, environment: dict | None = None):
    """`streamlit run streamlit_app.py` in its own process, with its samples database, model
    folder and log in `folder`; yields (url, samples_db, models, log) once the server is healthy.

    `models`: a model folder to use as it is (several servers may share one); `environment`:
    more variables (e.g. DIGITREC_SAMPLES_URL for a shared PostgreSQL database)."""
    if models is None:
        models = folder / "models"
        _seed_models(models)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DIGITREC_SAMPLES_DB": str(folder / "samples.db"),
        "DIGITREC_MODELS_DIR": str(models),
        "DIGITREC_MNIST_DIR": os.environ.get("DIGITREC_MNIST_DIR")
        or str(REPO.parent / "shared" / "data" / "mnist"),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
        **(environment or {}),
    }
    log_path = folder / "streamlit.log"
    command = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
               "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--server.fileWatcherType", "none",
               "--browser.gatherUsageStats", "false",
               # With each line's level, so a warning can be told from information.
               "--logger.messageFormat", LOG_FORMAT]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while _health(url) != "ok":
            if process.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with {process.returncode}" if process.poll() is not None
                       else f"not healthy after {STARTUP_TIMEOUT_S} s")
                pytest.fail(f"the app {why}; its log:\n{log_path.read_text(errors='replace')[-3000:]}",
                            pytrace=False)
            time.sleep(0.5)
        yield SimpleNamespace(url=url, samples_db=folder / "samples.db", models=models, log=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app in its own process with a fresh samples database and model folder (one per module)."""
    with serve_app(tmp_path_factory.mktemp("browser-app")) as served:
        yield served


@pytest.fixture(scope="module")
def app_url(app) -> str:
    return app.url


@pytest.fixture()
def page(browser, app_url, request):
    """A fresh page (own context: own cookies, own Streamlit session) at 1400x1000."""
    with screenshotted_page(browser.new_context(viewport=VIEWPORT, device_scale_factor=1), request,
                            full_page=True) as page:
        yield page


@contextmanager
def screenshotted_page(context, request, full_page: bool):
    """A page in `context`; at the end a screenshot of it in artifacts/browser/, then the context closes."""
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        try:
            if full_page:
                park_mouse(page)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)
        except PlaywrightError as error:  # a screenshot must not hide the test's own result
            print(f"no screenshot for {name}: {error}")
        context.close()


@pytest.fixture(scope="module")
def held_out_digits(pen_digits):
    """20 pen digits of held-out writers, two per label, each pair from two writers (fixed)."""
    chosen = []
    for label in range(10):
        of_label = [d for d in pen_digits if d.label == label and d.writer in HELD_OUT_WRITERS]
        writers = sorted({d.writer for d in of_label})
        assert len(writers) >= 2, f"too few held-out writers for {label}"
        for pick in (2 * label, 2 * label + 1):
            writer = writers[pick % len(writers)]
            chosen.append(next(d for d in of_label if d.writer == writer))
    return chosen


# --- helpers -------------------------------------------------------------------------------


def fit_strokes(strokes, height: float, centre: tuple[float, float], max_width: float):
    """place_strokes, made smaller if a wide digit would be wider than `max_width`."""
    from digitrec.data import place_strokes

    placed = place_strokes(strokes, height, centre)
    xs = [x for stroke in placed for x, _ in stroke]
    width = max(xs) - min(xs)
    if width > max_width:
        placed = place_strokes(strokes, height * max_width / width, centre)
    return placed


def park_mouse(page) -> None:
    """Move the pointer to an empty corner of the main area: no hover effects in screenshots."""
    page.mouse.move(VIEWPORT["width"] - 10, VIEWPORT["height"] - 10)


def wait_settled(page, timeout_ms: int = RERUN_TIMEOUT_MS) -> None:
    """Wait until no script run is going on and no element is stale, twice in a row."""
    deadline = time.monotonic() + timeout_ms / 1000
    calm = 0
    while calm < 2:
        remaining = max(1, int((deadline - time.monotonic()) * 1000))
        page.wait_for_function(SETTLED_JS, timeout=remaining)
        page.wait_for_timeout(300)
        calm = calm + 1 if page.evaluate(SETTLED_JS) else 0


def open_app(page, url: str, path: str = "/") -> None:
    """Open a page of the app and wait until its first run is done."""
    page.goto(url.rstrip("/") + path)
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS * 2)  # first visit may load the model
    wait_settled(page)


def canvas(page):
    """The canvas element that takes the pen (waits until it is there)."""
    element = page.locator(CANVAS).first
    element.wait_for(state="visible")
    return element


def draw(page, strokes) -> None:
    """Draw strokes (canvas pixels) like a person: pen down, move, pen up; wait for each rerun.

    After every stroke the canvas sends the drawing and the app reruns; waiting for the result
    area to change (and the run to finish) before the next stroke makes the final reading the
    reading of the whole drawing, never of a part of it.
    """
    target = canvas(page)
    box = target.bounding_box()
    assert box is not None, "the canvas has no box on the page"
    for stroke in strokes:
        before = page.evaluate(RESULT_SIGNATURE_JS)
        (x0, y0), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        for x, y in rest or [(x0 + 1, y0 + 1)]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
        page.mouse.up()
        try:
            page.wait_for_function(f"before => ({RESULT_SIGNATURE_JS})() !== before", arg=before,
                                   timeout=RERUN_TIMEOUT_MS)
        except PlaywrightTimeout:
            pass  # a stroke that changes nothing the app shows (a speck): just let things settle
        wait_settled(page)
    park_mouse(page)  # out of the way of screenshots


def metric(page, label: str, scope=None):
    """The value element of the st.metric with this label."""
    return ((page if scope is None else scope).locator('[data-testid="stMetric"]').filter(has_text=label)
            .locator('[data-testid="stMetricValue"]').first)


def read_metric(page, label: str, scope=None) -> str:
    value = metric(page, label, scope)
    value.wait_for(state="visible", timeout=RERUN_TIMEOUT_MS)
    return value.inner_text().strip()


def clear(page) -> None:
    """Click Clear and wait for the fresh, empty canvas and the prompt."""
    old = page.locator(CANVAS).first.element_handle()
    page.get_by_role("button", name="Clear", exact=True).click()
    try:
        page.wait_for_function("element => !element.isConnected", arg=old, timeout=RERUN_TIMEOUT_MS)
    except PlaywrightTimeout:
        pass  # the tests that care check the pixels and the prompt themselves
    expect(page.get_by_text(PROMPT)).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    canvas(page)


def ink_pixels(page) -> int:
    """Pixels with any ink on the canvas's painted layer."""
    return page.locator(INK_LAYER).first.evaluate(INK_PIXELS_JS)


def digit_strokes(digit, size: int = 280):
    """A pen digit placed in the middle of the 280x280 canvas, 70% of its height."""
    return fit_strokes(digit.strokes, size * 0.7, (size / 2, size / 2), max_width=size * 0.85)


def no_tracebacks(page) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"the app shows a traceback: {exceptions.first.inner_text()[:2000]}"


# --- tests ---------------------------------------------------------------------------------


def test_draw_digits_reads_what_was_drawn(page, app_url, held_out_digits):
    open_app(page, app_url)
    misreads, started, docs_saved = [], time.monotonic(), None  # docs_saved: the label shown
    from_strokes = 0  # readings the page says came from the strokes (json_data) and the picture
    for index, digit in enumerate(held_out_digits):
        if index:
            clear(page)
            assert metric(page, "Prediction").count() == 0, "Clear left the previous prediction"
        draw(page, digit_strokes(digit))
        read = read_metric(page, "Prediction")
        from_strokes += page.get_by_text("Read from your strokes and the picture").count() > 0
        if read != str(digit.label):
            misreads.append((digit.label, digit.writer, read))
        elif docs_saved is None or (digit.label == DOCS_LABEL and docs_saved != DOCS_LABEL):
            # The README's picture: the Draw page with a digit read right (a 2 if one is).
            DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_SCREENSHOT), full_page=True)
            docs_saved = digit.label
    no_tracebacks(page)
    total = len(held_out_digits)
    rate = 1 - len(misreads) / total
    print(f"\nread {total - len(misreads)}/{total} drawn digits right ({rate:.0%}) in "
          f"{time.monotonic() - started:.0f} s; misreads (label, writer -> read): "
          + (", ".join(f"{label} (writer {writer}) -> {read}" for label, writer, read in misreads)
             or "none"))
    assert from_strokes == total, f"only {from_strokes} of {total} drawings were read from their strokes"
    assert docs_saved is not None, "no digit was read right: no docs screenshot"
    assert rate >= 0.9, f"only {rate:.0%} of {total} drawn digits read right: {misreads}"


def test_every_page_works_offline_nothing_is_fetched_from_elsewhere(page, app_url):
    # A new user's check: the tab's icon (a Material symbol) came from fonts.gstatic.com, and
    # without internet, or behind a strict firewall, the request failed in the console.
    here = urlparse(app_url).hostname
    elsewhere = []

    def note(request):
        address = urlparse(request.url)
        if address.scheme in ("http", "https", "ws", "wss") and address.hostname != here:
            elsewhere.append(request.url)

    page.on("request", note)
    for path in ("/", "/samples", "/retrain", "/models"):
        open_app(page, app_url, path)
        wait_settled(page)
    icon = page.locator("link[rel='shortcut icon']").get_attribute("href")
    assert not elsewhere, elsewhere
    assert icon and (icon.startswith("data:") or urlparse(icon).hostname in (None, here)), icon


def test_empty_canvas_shows_prompt_and_no_guess(page, app_url):
    open_app(page, app_url)
    canvas(page)
    expect(page.get_by_text(PROMPT)).to_be_visible()
    assert metric(page, "Prediction").count() == 0, "an empty canvas shows a prediction"
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 0, "an empty canvas shows a chart"
    assert page.get_by_role("button", name=re.compile("Yes, it is a")).count() == 0
    assert ink_pixels(page) == 0
    no_tracebacks(page)


def test_the_whole_digit_canvas_fits_its_column_on_a_desktop(page, app_url):
    """The canvas column's width weights add up to the content width less the columns' gaps: the
    canvas's right edge was cut off (its column 7 px too narrow) at a 1280 px desktop."""
    page.set_viewport_size({"width": 1280, "height": 900})
    open_app(page, app_url)
    box = canvas(page).bounding_box()
    column = page.locator('[data-testid="stColumn"]').filter(has=page.locator(CANVAS)).last
    outer = column.bounding_box()
    assert outer["x"] + outer["width"] >= box["x"] + box["width"], (outer, box)


def test_clear_empties_the_canvas(page, app_url, held_out_digits):
    from PIL import Image, ImageChops

    open_app(page, app_url)
    park_mouse(page)
    empty = Image.open(io.BytesIO(canvas(page).screenshot())).convert("RGB")
    draw(page, digit_strokes(held_out_digits[6]))
    read_metric(page, "Prediction")
    assert ink_pixels(page) > 500, "the drawing left no ink on the canvas"
    # Over the chart its toolbar rises above it: clear of the Clear button (a click from the
    # chart to Clear had landed on "Copy Vega-Lite spec" and cleared nothing).
    page.locator('[data-testid="stVegaLiteChart"]').first.hover()
    page.wait_for_timeout(500)
    toolbar = page.locator('[data-testid="stElementToolbar"]').first.bounding_box()
    button = page.get_by_role("button", name="Clear", exact=True).bounding_box()
    assert toolbar["y"] >= button["y"] + button["height"], \
        f"the chart's toolbar {toolbar} covers Clear {button}"

    clear(page)
    expect(page.get_by_text(PROMPT)).to_be_visible()
    assert metric(page, "Prediction").count() == 0, "Clear left the prediction on the page"
    assert page.locator('[data-testid="stVegaLiteChart"]').count() == 0, "Clear left the chart"
    assert ink_pixels(page) == 0, "Clear left ink on the canvas"
    park_mouse(page)
    cleared = Image.open(io.BytesIO(canvas(page).screenshot())).convert("RGB")
    assert cleared.size == empty.size
    difference = np.asarray(ImageChops.difference(empty, cleared)).max(axis=2)
    changed = float((difference > 24).mean())
    assert changed < 0.005, f"the cleared canvas differs from an empty one in {changed:.1%} of its pixels"
    no_tracebacks(page)


def test_every_correction_is_in_sight_on_a_desktop(page, app_url, held_out_digits):
    """The nine "No, the right digit is" pills wrap inside their column: placed straight in a
    column they stayed on one row, and at 1280 px the last one was scrolled out of sight. After
    "not a digit" the ten are on one row."""
    page.set_viewport_size({"width": 1280, "height": 900})
    open_app(page, app_url)
    draw(page, digit_strokes(held_out_digits[3]))
    read = read_metric(page, "Prediction")
    other = "1" if read != "1" else "2"
    group = page.locator('[data-testid="stButtonGroup"]').filter(
        has=page.get_by_role("radio", name=other, exact=True))  # single-choice pills
    expect(group.get_by_role("radio")).to_have_count(9, timeout=RERUN_TIMEOUT_MS)
    outer = group.bounding_box()
    for digit in (str(d) for d in range(10) if str(d) != read):
        box = group.get_by_role("radio", name=digit, exact=True).bounding_box()
        assert outer["x"] <= box["x"] and box["x"] + box["width"] <= outer["x"] + outer["width"] + 1, \
            (digit, box, outer)

    # After "not a digit" the pick has all ten digits: beside the picture of what the model saw,
    # the 9 wrapped alone onto a second row at 1280 px.
    clear(page)
    draw(page, [[(70 + 14 * i, 60 + 16 * i) for i in range(11)],  # an X, two strokes
                [(210 - 14 * i, 60 + 16 * i) for i in range(11)]])
    expect(page.get_by_text("This does not look like a digit")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    group = page.locator('[data-testid="stButtonGroup"]').filter(
        has=page.get_by_role("radio", name="9", exact=True))
    expect(group.get_by_role("radio")).to_have_count(10, timeout=RERUN_TIMEOUT_MS)
    tops = {round(group.get_by_role("radio", name=str(digit), exact=True).bounding_box()["y"])
            for digit in range(10)}
    assert len(tops) == 1, tops  # one row
    assert in_viewport(page, group.get_by_role("radio", name="9", exact=True))
    expect(page.get_by_text("A digit after all?")).to_be_visible()  # a question the pills answer
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    park_mouse(page)
    page.screenshot(path=str(ARTIFACTS / "not_a_digit_desktop.png"))
    no_tracebacks(page)


def test_after_not_a_digit_a_phone_offers_ten_digits_in_two_rows_of_five(phone_page, app_url):
    """On a 390 px phone the ten digits to pick after "not a digit" wrapped 0-8, then the 9
    alone on a row of its own; now they are two rows, 0-4 and 5-9, on the screen's width."""
    page = phone_page
    open_app(page, app_url)
    wait_settled(page)
    side = canvas(page).bounding_box()["width"]
    touch_draw(page, [[(side * (0.2 + 0.06 * i), side * (0.2 + 0.06 * i)) for i in range(11)],  # an X
                      [(side * (0.8 - 0.06 * i), side * (0.2 + 0.06 * i)) for i in range(11)]])
    expect(page.get_by_text("This does not look like a digit")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    group = page.locator('[data-testid="stButtonGroup"]').filter(
        has=page.get_by_role("radio", name="9", exact=True))
    expect(group.get_by_role("radio")).to_have_count(10, timeout=RERUN_TIMEOUT_MS)
    boxes = [group.get_by_role("radio", name=str(digit), exact=True).bounding_box() for digit in range(10)]
    rows = sorted({round(box["y"]) for box in boxes})
    assert len(rows) == 2, rows
    assert [round(box["y"]) for box in boxes] == [rows[0]] * 5 + [rows[1]] * 5, boxes
    assert all(box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] for box in boxes), boxes
    group.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "not_a_digit_phone.png"))
    no_tracebacks(page)


def test_the_rest_of_the_result_follows_each_answer(page, app_url, held_out_digits):
    """A stroke's rerun sends only the answer and its chart; the top 3, what the model sees and
    'Right?' come in a second rerun that the browser asks for once the answer is on the page.
    They follow every stroke, and a drawing made again after Clear (the same drawing as
    before) gets them too."""
    open_app(page, app_url)
    strokes = digit_strokes(held_out_digits[3])
    for attempt in range(2):
        if attempt:
            clear(page)
            expect(page.get_by_text(re.compile(r"^Top 3:"))).to_have_count(0)
            expect(page.get_by_role("button", name=YES_BUTTON)).to_have_count(0)
        for stroke in strokes:
            draw(page, [stroke])
            read = read_metric(page, "Prediction")
            expect(page.get_by_text(re.compile(rf"^Top 3: {read}\s"))).to_be_visible(timeout=RERUN_TIMEOUT_MS)
            expect(page.get_by_role("button", name=re.compile(rf"Yes, it is an? {read}\b"))).to_be_visible(
                timeout=RERUN_TIMEOUT_MS)
            expect(page.get_by_text("What the model sees")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    no_tracebacks(page)


def test_upload_png_is_read(page, app_url, held_out_digits, pen_digits, tmp_path):
    from PIL import Image

    from digitrec.data import place_strokes, render_strokes

    from benchmarks.numbers import photo_of

    digit = held_out_digits[14]  # a 7
    ink = render_strokes(digit_strokes(digit))[..., 3]
    photo = tmp_path / f"digit-{digit.label}.png"
    Image.fromarray(255 - ink, "L").convert("RGB").save(photo)  # dark ink on white paper
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("these are my notes, not a picture\n" * 20)

    open_app(page, app_url)
    page.get_by_role("tab", name="Upload a photo").click()
    panel = page.get_by_role("tabpanel", name="Upload a photo")
    panel.locator('input[type="file"]').set_input_files(str(photo))
    expect(metric(page, "Prediction", panel)).to_have_text(str(digit.label), timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    no_tracebacks(page)
    # The picture sits beside its answer, so "Right?" is on the first screen (a new user's check:
    # under the picture it was below the fold of a desktop window).
    confirm = panel.get_by_role("button", name=f"Yes, it is a {digit.label}")
    box = confirm.bounding_box()
    assert box is not None and box["y"] + box["height"] <= VIEWPORT["height"], box

    # A phone's JPEG of a digit written with a thin pen: it had been "blank paper" (the paper's
    # noise, left after its uneven light was taken off, counted as ink).
    ballpoint = held_out_digits[7]  # a 3
    photographed = tmp_path / "ballpoint.jpg"
    Image.fromarray(photo_of(place_strokes(ballpoint.strokes, 160, (350, 140)), np.random.default_rng(7))
                    ).save(photographed, quality=90)
    panel.locator('input[type="file"]').set_input_files(str(photographed))
    expect(metric(page, "Prediction", panel)).to_have_text(str(ballpoint.label), timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    no_tracebacks(page)

    # Held-out writer 29's 0 with a dot under it, as a picture: the dot had drawn the 0 smaller
    # and off-centre ("This does not look like a digit"; with a thicker pen "9"). It is left out.
    dotted = next(d for d in pen_digits if d.writer == 29 and d.label == 0 and len(d.strokes) == 2)
    dotted_photo = tmp_path / "zero-and-dot.png"
    Image.fromarray(255 - render_strokes(digit_strokes(dotted))[..., 3], "L").save(dotted_photo)
    panel.locator('input[type="file"]').set_input_files(str(dotted_photo))
    expect(metric(page, "Prediction", panel)).to_have_text("0", timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    no_tracebacks(page)

    # A picture of one blob of ink is not blank paper (it was told "it looks like blank paper").
    blob, blank = tmp_path / "blob.png", tmp_path / "blank.png"
    Image.fromarray(255 - render_strokes([[(140, 140)]], brush=60)[..., 3], "L").save(blob)
    Image.new("L", (280, 280), 250).save(blank)
    for picture, says in ((blob, "its ink is one dot or blob"), (blank, "it looks like blank paper")):
        panel.locator('input[type="file"]').set_input_files(str(picture))
        expect(panel.locator('[data-testid="stAlert"]').filter(has_text=says)).to_be_visible(
            timeout=RERUN_TIMEOUT_MS)
        wait_settled(page)
    no_tracebacks(page)

    panel.locator('input[type="file"]').set_input_files(str(not_an_image))
    error = panel.locator('[data-testid="stAlert"]').filter(has_text="Cannot read this file:")
    expect(error).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    print(f"\nupload error shown: {error.inner_text()!r}")
    assert metric(page, "Prediction", panel).count() == 0, "a prediction is shown for a text file"
    no_tracebacks(page)


def test_saved_correction_appears_on_samples_page(page, app, held_out_digits):
    from digitrec.store import SampleStore

    before = sum(SampleStore(app.samples_db).count_by_label().values()) if app.samples_db.exists() else 0
    open_app(page, app.url)
    draw(page, digit_strokes(held_out_digits[4]))
    predicted = int(read_metric(page, "Prediction"))
    corrected = (predicted + 1) % 10

    choices = page.get_by_role("radiogroup", name=CORRECTION_CHOICES)
    expect(choices.get_by_role("radio", name=str(predicted), exact=True)).to_have_count(0)  # not a correction
    choices.get_by_role("radio", name=str(corrected), exact=True).click()
    save = page.get_by_role("button", name=re.compile(rf"Save as an? {corrected}\b"))
    save.click()
    message = page.get_by_text(
        re.compile(rf"Saved sample #\d+ as an? {corrected}\. See it on the Samples page\."))
    expect(message).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    sample_id = int(re.search(r"#(\d+)", message.inner_text()).group(1))
    wait_settled(page)
    no_tracebacks(page)
    assert sum(SampleStore(app.samples_db).count_by_label().values()) == before + 1, \
        "the sample is not in the app's samples database"

    page.get_by_role("link", name="Samples").click()
    page.wait_for_url(re.compile(r"/samples$"))
    wait_settled(page)
    expect(page.get_by_role("heading", name=re.compile("Saved samples"))).to_be_visible()
    expect(metric(page, "Samples")).to_have_text(str(before + 1), timeout=RERUN_TIMEOUT_MS)
    caption = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=f"#{sample_id} ·")
    expect(caption).to_have_count(1)
    expect(caption).to_contain_text(f"{corrected} (model read {predicted})")
    no_tracebacks(page)


GALLERY_TIMEZONE = "Asia/Kolkata"  # UTC+05:30 all year: never the machine's UTC by chance


def test_samples_gallery_shows_the_drawing_and_local_time(browser, app, held_out_digits, request):
    """A saved sample on the Samples page: its drawing beside the model input, its time in the
    browser's own time zone (not the server's UTC)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from PIL import Image

    from digitrec.data import render_strokes
    from digitrec.preprocess import preprocess
    from digitrec.store import SampleStore
    from digitrec.views import png_bytes

    digit = held_out_digits[10]  # a 5
    drawing = render_strokes(digit_strokes(digit))  # RGBA: dark ink, transparent paper
    samples = SampleStore(app.samples_db)
    sample_id = samples.add(preprocess(drawing).model_input, digit.label, predicted=digit.label,
                            drawing_png=png_bytes(drawing))
    created = datetime.fromisoformat(samples.get(sample_id).created)
    expected = created.astimezone(ZoneInfo(GALLERY_TIMEZONE)).strftime("%Y-%m-%d %H:%M")

    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, timezone_id=GALLERY_TIMEZONE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        open_app(page, app.url, "/samples")
        # Chromium names this zone by its older alias Asia/Calcutta; either is the browser's zone.
        expect(page.get_by_text(re.compile(r"times in Asia/(Kolkata|Calcutta)"))).to_be_visible()
        cell = page.locator('[class*="st-key-sample-card-"]').filter(
            has=page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=f"#{sample_id} ·"))
        expect(cell).to_have_count(1)
        expect(cell).to_contain_text(f"#{sample_id} · {expected}")
        image = cell.locator('[data-testid="stImage"] img').first
        expect(image).to_be_visible()
        source = image.get_attribute("src")
        picture = Image.open(io.BytesIO(page.request.get(urljoin(app.url + "/", source)).body())).convert("L")
        pixels = np.asarray(picture)
        height, width = pixels.shape
        assert width > 1.8 * height, f"one {width}x{height} picture: not the drawing beside the model input"
        drawn, seen = pixels[:, : height], pixels[:, -height:]
        assert (drawn > 240).mean() > 0.5 and (drawn < 80).mean() > 0.02, \
            "the left picture is not the drawing (dark ink on white paper)"
        assert (seen < 15).mean() > 0.5 and (seen > 200).mean() > 0.02, \
            "the right picture is not the model input (white digit on black)"
        no_tracebacks(page)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        park_mouse(page)
        page.screenshot(path=str(ARTIFACTS / "samples_gallery.png"), full_page=True)
    finally:
        context.close()


def test_number_mode_reads_three_digits(page, app, held_out_digits):
    from digitrec.store import SampleStore

    app_url = app.url
    open_app(page, app_url)
    page.get_by_role("radiogroup", name="Read").get_by_role("radio", name="Number", exact=True).click()
    deadline = time.monotonic() + RERUN_TIMEOUT_MS / 1000
    while True:  # the Digit canvas is replaced by a wider one
        box = page.locator(CANVAS).first.bounding_box()
        if box is not None and box["width"] == 700:
            break
        assert time.monotonic() < deadline, f"the Number canvas is not 700 px wide: {box}"
        page.wait_for_timeout(250)
    wait_settled(page)
    box = canvas(page).bounding_box()
    assert (box["width"], box["height"]) == (700, 280), box

    # Three digits side by side, 150 px high, centred at x = 120, 350 and 580.
    digits = [held_out_digits[2 * label] for label in NUMBER_LABELS]
    placed = [fit_strokes(digit.strokes, 150, (x, 140), max_width=200)
              for digit, x in zip(digits, (120, 350, 580))]

    # The pen must reach every part of the canvas that is drawn on (checked point by point).
    target = canvas(page)
    rightmost = max(x for strokes in placed for stroke in strokes for x, _ in stroke) + PEN_RADIUS
    unreachable = [x for x in range(0, 700, 10)
                   if not target.evaluate(HITS_CANVAS_JS, [box["x"] + x + 5, box["y"] + 140])]
    reach = min(unreachable, default=700)
    assert reach >= rightmost, (
        f"only the left {reach} px of the 700 px Number canvas take the pen at a "
        f"{VIEWPORT['width']}x{VIEWPORT['height']} window (the rest sticks out of its column, "
        f"under the result column), so the number drawn up to x={rightmost:.0f} cannot be read")

    for strokes in placed:
        draw(page, strokes)
    expected = "".join(str(d.label) for d in digits)
    read = read_metric(page, "Number")
    if read != expected:
        per_digit = page.locator('[data-testid="stMarkdownContainer"]').filter(
            has_text=re.compile(r"^\d · \d+%$")).all_inner_texts()
        pytest.fail(f"drew {expected}, the app read {read!r}; per digit: {per_digit}", pytrace=False)
    no_tracebacks(page)
    expect(page.get_by_role("heading", name="Each digit")).to_be_visible()
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    expect(charts).to_have_count(len(digits))
    boxes = [charts.nth(i).bounding_box() for i in range(len(digits))]
    assert min(b["height"] for b in boxes) >= 120, f"per-digit charts too small to read: {boxes}"
    assert len({round(b["y"]) for b in boxes}) == 1, f"per-digit charts not aligned: {boxes}"

    # Corrections in Number mode: fix the middle digit, save each digit as a sample, once.
    samples = SampleStore(app.samples_db)
    before = samples.count() if app.samples_db.exists() else 0
    corrected = (NUMBER_LABELS[1] + 3) % 10
    page.get_by_label("Digit 2 is").click()
    page.keyboard.type(str(corrected))  # the selectbox filters its options as you type
    page.keyboard.press("Enter")
    wait_settled(page)
    saved_as = f"{NUMBER_LABELS[0]}{corrected}{NUMBER_LABELS[2]}"
    save = page.get_by_role("button", name=re.compile(rf"Save as {saved_as}\b"))
    save.click()
    expect(page.get_by_text(re.compile(rf"Saved 3 samples .* as {saved_as}\."))).to_be_visible(
        timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    expect(save).to_have_count(0)
    assert samples.count() == before + 3
    newest = sorted(samples.list(limit=3), key=lambda sample: sample.id)
    assert [sample.label for sample in newest] == [NUMBER_LABELS[0], corrected, NUMBER_LABELS[2]]
    assert [sample.predicted for sample in newest] == list(NUMBER_LABELS)
    # ... and each saved digit became an example of this visitor's handwriting, as in Digit mode
    expect(page.get_by_text("Adapted to you: 3 examples")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    no_tracebacks(page)


def switch_read(page, choice: str, width: int) -> None:
    """Click Read -> `choice` and wait for its canvas, `width` px wide, and a settled page."""
    page.get_by_role("radiogroup", name="Read").get_by_role("radio", name=choice, exact=True).click()
    deadline = time.monotonic() + RERUN_TIMEOUT_MS / 1000
    while True:
        box = page.locator(CANVAS).first.bounding_box()
        if box is not None and box["width"] == width:
            break
        assert time.monotonic() < deadline, f"the {choice} canvas is not {width} px wide: {box}"
        page.wait_for_timeout(250)
    wait_settled(page)


def test_a_digit_drawn_goes_along_to_number_mode(page, app_url, held_out_digits):
    """Switching Read -> Number keeps the digit on the canvas (it had started an empty canvas):
    it is read as the number, and a digit drawn beside it makes a two-digit number. Back in
    Digit mode the two digits do not fit the smaller canvas, which starts empty."""
    open_app(page, app_url)
    first, second = (held_out_digits[2 * label] for label in NUMBER_LABELS[:2])
    draw(page, fit_strokes(first.strokes, 150, (140, 140), max_width=200))
    expect(metric(page, "Prediction")).to_have_text(str(first.label), timeout=RERUN_TIMEOUT_MS)

    switch_read(page, "Number", 700)
    assert ink_pixels(page) > 500, "the digit did not come along to the Number canvas"
    expect(metric(page, "Number")).to_have_text(str(first.label), timeout=RERUN_TIMEOUT_MS)
    # ... and says so (a new user started a new number on top of it): until the next stroke
    came_along = page.get_by_text("What you drew last came along to this canvas")
    expect(came_along).to_be_visible()
    draw(page, fit_strokes(second.strokes, 150, (420, 140), max_width=200))
    expect(metric(page, "Number")).to_have_text(f"{first.label}{second.label}", timeout=RERUN_TIMEOUT_MS)
    expect(came_along).to_have_count(0)

    switch_read(page, "Digit", 280)
    expect(page.get_by_text(PROMPT)).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    assert ink_pixels(page) == 0, "a number wider than the Digit canvas was cut into it"
    no_tracebacks(page)


# Before the retrain test below, which promotes a freshly trained (one-epoch) model.
TOUCHING_NUMBER = (3, 8, 1, 7)  # drawn with the 3 touching the 8 and the 1 touching the 7
TOUCHING_OVERLAP = 0.08  # of the digit height: each touching pair's ink columns overlap this much


def test_number_mode_reads_touching_digits_drawn_with_the_mouse(page, app_url, held_out_digits):
    """Digits that touch are told apart by their pen strokes: 3|8 and 1|7 touch, read 3817."""
    from digitrec.data import place_strokes, render_strokes

    open_app(page, app_url)
    page.get_by_role("radiogroup", name="Read").get_by_role("radio", name="Number", exact=True).click()
    deadline = time.monotonic() + RERUN_TIMEOUT_MS / 1000
    while (canvas(page).bounding_box() or {}).get("width") != 700:
        assert time.monotonic() < deadline, "the Number canvas did not come"
        page.wait_for_timeout(250)
    wait_settled(page)
    height, pen, x = 130.0, 2 * PEN_RADIUS, 60.0
    gaps = [-TOUCHING_OVERLAP, 0.25, -TOUCHING_OVERLAP]
    digits = []
    for index, label in enumerate(TOUCHING_NUMBER):
        if index:
            x += gaps[index - 1] * height
        placed = place_strokes(held_out_digits[2 * label].strokes, height, (0.0, 140.0))
        xs = [px for stroke in placed for px, _ in stroke]
        shift = x + pen / 2 - min(xs)
        digits.append([[(px + shift, py) for px, py in stroke] for stroke in placed])
        x += max(xs) - min(xs) + pen
    inks = [render_strokes(strokes, 700, pen)[:280, :700, 3] >= 128 for strokes in digits]
    assert (inks[0] & inks[1]).any() and (inks[2] & inks[3]).any(), "the pairs drawn must touch"
    for strokes in digits:
        draw(page, strokes)
    expected = "".join(map(str, TOUCHING_NUMBER))
    read = read_metric(page, "Number")
    assert read == expected, f"drew {expected} with touching pairs, the app read {read!r}"
    expect(page.get_by_text(re.compile(r"grouped from your \d+ pen strokes"))).to_be_visible()
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    expect(charts).to_have_count(len(TOUCHING_NUMBER))
    no_tracebacks(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "number_touching.png"), full_page=True)


def test_upload_a_photo_of_a_number(page, app_url, held_out_digits, tmp_path):
    """The Upload tab reads a photo of a number in "Number" mode: the number, each digit's chart."""
    from PIL import Image

    from digitrec.data import place_strokes, render_strokes

    strokes, x = [], 40.0
    for label in NUMBER_LABELS:
        placed = place_strokes(held_out_digits[2 * label + 1].strokes, 150, (0.0, 140.0))
        xs = [px for stroke in placed for px, _ in stroke]
        strokes += [[(px + x - min(xs), py) for px, py in stroke] for stroke in placed]
        x += max(xs) - min(xs) + 70
    ink = render_strokes(strokes, 700, 14)[:280, :700, 3]
    photo = tmp_path / "number.png"
    Image.fromarray(255 - ink, "L").convert("RGB").save(photo)  # dark ink on white paper

    open_app(page, app_url)
    page.get_by_role("tab", name="Upload a photo").click()
    panel = page.get_by_role("tabpanel", name="Upload a photo")
    panel.get_by_role("radiogroup", name="Read").get_by_role("radio", name="Number", exact=True).click()
    wait_settled(page)
    panel.locator('input[type="file"]').set_input_files(str(photo))
    expected = "".join(map(str, NUMBER_LABELS))
    expect(metric(page, "Number", panel)).to_have_text(expected, timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    expect(panel.locator('[data-testid="stVegaLiteChart"]')).to_have_count(len(NUMBER_LABELS))
    save = panel.get_by_role("button", name=re.compile(rf"Yes, it is {expected}: save its 3 digits"))
    expect(save).to_be_visible()
    no_tracebacks(page)


def test_a_drawing_is_saved_once_and_the_next_drawing_gets_fresh_controls(page, app, held_out_digits):
    """One drawing, at most one sample: no duplicate 'Yes', no second label, no stale pick."""
    from digitrec.store import SampleStore

    def saved() -> int:
        return SampleStore(app.samples_db).count() if app.samples_db.exists() else 0

    open_app(page, app.url)
    draw(page, digit_strokes(held_out_digits[12]))  # a 6
    read_metric(page, "Prediction")
    before = saved()
    yes = page.get_by_role("button", name=YES_BUTTON)
    choices = page.get_by_role("radiogroup", name=CORRECTION_CHOICES)
    yes.dblclick()  # an impatient double click
    message = page.get_by_text(re.compile(r"Saved sample #\d+ as an? \d\. See it on the Samples page\."))
    expect(message).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    expect(yes).to_have_count(0)  # no second 'Yes' for this drawing
    expect(choices).to_have_count(0)  # ... and no other label for it either
    assert saved() == before + 1, "one drawing was saved more than once"

    # Another stroke makes another drawing: fresh controls, nothing picked, no Save button.
    draw(page, [[(30, 250), (60, 250)]])
    expect(message).to_have_count(0)
    expect(yes).to_be_visible()
    predicted = int(read_metric(page, "Prediction"))
    expect(choices.get_by_role("radio", checked=True)).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"Save as"))).to_have_count(0)
    corrected = (predicted + 5) % 10
    choices.get_by_role("radio", name=str(corrected), exact=True).click()
    page.get_by_role("button", name=re.compile(rf"Save as an? {corrected}\b")).click()
    expect(page.get_by_text(re.compile(rf"Saved sample #\d+ as an? {corrected}\."))).to_be_visible(
        timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    assert saved() == before + 2

    # And the stroke after that: the picked digit does not carry over.
    draw(page, [[(250, 30), (260, 60)]])
    expect(choices.get_by_role("radio", checked=True)).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile(r"Save as"))).to_have_count(0)
    assert saved() == before + 2
    no_tracebacks(page)


def test_stroke_latency_in_the_browser(page, app_url, held_out_digits):
    """Mouse-up to the new Prediction on the page, split into the canvas component's own send
    delay and ours; printed (figures, not asserted: see benchmarks/browser_latency.py)."""
    from benchmarks.browser_latency import INSTRUMENT_JS, describe, measure_digits

    page.add_init_script(INSTRUMENT_JS)
    open_app(page, app_url)
    canvas(page)
    results = measure_digits(page, held_out_digits[1::4], timeout_ms=RERUN_TIMEOUT_MS)
    print("\n" + describe(results))
    assert any(result is not None for result in results), "no stroke's answer was seen in the page"
    no_tracebacks(page)


PHONE = {"width": 390, "height": 844}


@pytest.fixture()
def phone_page(browser, app_url, request):
    """A phone: 390x844, touch, mobile viewport, 3x pixels."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=3, has_touch=True, is_mobile=True)
    with screenshotted_page(context, request, full_page=False) as page:
        yield page


def touch_draw(page, strokes) -> None:
    """Draw strokes with a finger (touch events through the DevTools protocol), like draw()."""
    session = page.context.new_cdp_session(page)
    box = canvas(page).bounding_box()
    for stroke in strokes:
        before = page.evaluate(RESULT_SIGNATURE_JS)
        points = [{"x": box["x"] + x, "y": box["y"] + y} for x, y in stroke]
        session.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points[:1]})
        for point in points[1:] or [{"x": points[0]["x"] + 1, "y": points[0]["y"] + 1}]:
            session.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        try:
            page.wait_for_function(f"before => ({RESULT_SIGNATURE_JS})() !== before", arg=before,
                                   timeout=RERUN_TIMEOUT_MS)
        except PlaywrightTimeout:
            pass
        wait_settled(page)
    session.detach()


def untouchable(page, box) -> list[tuple[int, int]]:
    """Points of the canvas at `box` (every 10 px across, near its top and halfway down) where
    something else would take a finger or a click."""
    target = canvas(page)
    return [(x, y) for y in (2, 10, 20, int(box["height"] / 2)) for x in range(2, int(box["width"]), 10)
            if not target.evaluate(HITS_CANVAS_JS, [box["x"] + x, box["y"] + y])]


def in_viewport(page, locator) -> bool:
    """Whether the element is wholly inside the visible window, and on top at its centre."""
    box = locator.bounding_box()
    if box is None:
        return False
    window = page.viewport_size
    inside = (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= window["width"]
              and box["y"] + box["height"] <= window["height"])
    on_top = locator.evaluate("""(element, [x, y]) => {
        let top = document.elementFromPoint(x, y);
        while (top && top.shadowRoot) {  // into the canvas component's shadow root
            const inner = top.shadowRoot.elementFromPoint(x, y);
            if (!inner || inner === top) break;
            top = inner;
        }
        return !!top && (element === top || element.contains(top));
    }""", [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
    return inside and on_top


def test_phone_draw_with_touch_answer_visible_and_number_canvas_fits(phone_page, app_url, held_out_digits):
    """On a 390x844 touch phone: the canvas fits the screen, a digit drawn with a finger is read
    and its answer is on the same screen as the canvas without scrolling; Number mode fits too."""
    page = phone_page
    open_app(page, app_url)
    wait_settled(page)
    box = canvas(page).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"canvas off the screen: {box}"
    # The canvas's toolbar is unseen until the pointer is over the canvas (a finger never is
    # before it touches): it lay over the canvas's top right 30 px and took the finger there (a
    # stroke begun there drew nothing, or pressed the unseen Reset).
    unreachable = untouchable(page, box)
    assert not unreachable, f"parts of the Digit canvas do not take the finger: (x, y) = {unreachable}"
    digit = held_out_digits[6]  # a 3
    side = box["width"]
    touch_draw(page, fit_strokes(digit.strokes, side * 0.7, (side / 2, side / 2), max_width=side * 0.85))
    prediction = metric(page, "Prediction")
    expect(prediction).to_have_text(str(digit.label), timeout=RERUN_TIMEOUT_MS)
    assert in_viewport(page, canvas(page)), "the canvas is not wholly on the screen"
    assert in_viewport(page, prediction), \
        f"the answer is not on the screen with the canvas: {prediction.bounding_box()}"
    # How sure, of every digit: the chart beside the answer, in sight too (stacked under the
    # answer it was below the fold).
    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    expect(chart).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    assert in_viewport(page, chart), f"the chart is not on the screen with the canvas: {chart.bounding_box()}"
    assert page.evaluate("window.scrollY") == 0
    no_tracebacks(page)
    DOCS_PHONE_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_PHONE_SCREENSHOT))  # the README's phone picture: canvas and answer
    # "Right?" follows the answer, before the top 3 and the picture (it was some 1,100 px down)
    yes = page.get_by_role("button", name=re.compile(r"^Yes, it is"))
    expect(yes).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    top3 = page.get_by_text(re.compile(r"^Top 3:")).bounding_box()
    assert yes.bounding_box()["y"] < top3["y"], (yes.bounding_box(), top3)
    assert yes.bounding_box()["y"] < PHONE["height"] * 1.5, yes.bounding_box()  # within a short scroll
    yes.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "phone_right_question.png"))
    # Streamlit scrolls its main block, not the window: back to the top, as before
    page.evaluate("document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    # Under the pointer the canvas's toolbar rises above the canvas: clear of the Pen button.
    canvas(page).hover()
    page.wait_for_timeout(500)  # it slides up after 0.1 s, in 0.1 s
    # Undo and reset stay; "update the app", which every stroke does already, is hidden (it did nothing seen)
    expect(page.get_by_role("button", name="Undo").first).to_be_visible()
    expect(page.get_by_role("button", name="Update the app with this drawing")).to_be_hidden()
    toolbar = page.locator(".dc-toolbar").first.bounding_box()
    pen = page.get_by_role("button", name="Pen").bounding_box()
    assert toolbar["y"] >= pen["y"] + pen["height"], f"the canvas toolbar {toolbar} covers Pen {pen}"
    assert not untouchable(page, canvas(page).bounding_box()), "the risen toolbar is over the canvas"

    page.get_by_role("radiogroup", name="Read").get_by_role("radio", name="Number", exact=True).tap()
    deadline = time.monotonic() + RERUN_TIMEOUT_MS / 1000
    while True:  # the Number canvas replaces the Digit one
        box = page.locator(CANVAS).first.bounding_box()
        if box is not None and box["width"] != side:
            break
        assert time.monotonic() < deadline, "Number mode did not bring its canvas"
        page.wait_for_timeout(250)
    wait_settled(page)
    box = canvas(page).bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], \
        f"the Number canvas does not fit a {PHONE['width']} px screen: {box}"
    unreachable = untouchable(page, box)
    assert not unreachable, f"parts of the Number canvas do not take the finger: (x, y) = {unreachable}"
    # The 3, as tall as the Digit canvas asks, came along shrunk to the lower Number canvas (it
    # used to be dropped there); Clear empties the canvas for the number below.
    expect(metric(page, "Number")).to_have_text(str(digit.label), timeout=RERUN_TIMEOUT_MS)
    old = page.locator(CANVAS).first.element_handle()
    page.get_by_role("button", name="Clear", exact=True).tap()
    page.wait_for_function("element => !element.isConnected", arg=old, timeout=RERUN_TIMEOUT_MS)
    expect(page.get_by_text("Draw a number (several digits")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    wait_settled(page)
    box = canvas(page).bounding_box()
    labels = (7, 1)
    width, height = box["width"], box["height"]
    for label, centre in zip(labels, (width * 0.3, width * 0.7)):
        pen_digit = held_out_digits[2 * label]
        touch_draw(page, fit_strokes(pen_digit.strokes, height * 0.6, (centre, height / 2),
                                     max_width=width * 0.3))
    number = metric(page, "Number")
    expect(number).to_have_text("".join(str(label) for label in labels), timeout=RERUN_TIMEOUT_MS)
    assert in_viewport(page, canvas(page)) and in_viewport(page, number), \
        (f"Number mode: canvas {canvas(page).bounding_box()} and answer {number.bounding_box()} "
         "not both on screen")
    # Each digit's correction right under its own chart (every chart had come first, then every pick).
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    expect(charts).to_have_count(len(labels))
    boxes = [charts.nth(index).bounding_box() for index in range(len(labels))]
    for index, chart in enumerate(boxes):
        pick = page.get_by_text(f"Digit {index + 1} is", exact=True).bounding_box()
        assert pick["y"] >= chart["y"] + chart["height"] - 1 and \
            chart["x"] - 2 <= pick["x"] <= chart["x"] + chart["width"], \
            f"digit {index + 1}'s pick at {pick}, its chart at {chart}"
    # Two digits side by side (one per row made a 4-digit number 3,000 px tall), on the screen.
    assert abs(boxes[0]["y"] - boxes[1]["y"]) < 2 and boxes[1]["x"] > boxes[0]["x"] + boxes[0]["width"], boxes
    assert boxes[1]["x"] + boxes[1]["width"] <= PHONE["width"], boxes
    no_tracebacks(page)


NAVIGATION = ["Draw", "Samples", "Retrain", "Models"]  # streamlit_app.py's st.navigation titles
NAV_LINK_LABEL = '[data-testid="stSidebarNav"] [data-testid="stSidebarNavLink"] span[label]'
CENTERED_MAX_WIDTH = 736  # px: Streamlit's "centered" layout; "wide" fills the window


@pytest.mark.parametrize("path, heading, tab", [("/models", "Model versions", "Models · digitrec"),
                                                ("/retrain", "Retrain the model", "Retrain · digitrec")])
def test_direct_link_on_a_fresh_server(browser, tmp_path, request, path, heading, tab):
    """A server whose very first visit is a page link (a Community Cloud app waking up).

    A folder named pages/ beside the entry point switched Streamlit to its legacy page list
    until streamlit_app.py had run: the sidebar listed the files (streamlit app, common, draw,
    ...), the layout was narrow and "common" was a blank page, for that whole session.
    """
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        with serve_app(tmp_path) as fresh:  # its own process: nothing has opened "/" before
            open_app(page, fresh.url, path)
            labels = page.locator(NAV_LINK_LABEL)
            expect(labels.first).to_be_visible()
            shown = [label.get_attribute("label") for label in labels.all()]
            assert shown == NAVIGATION, f"the sidebar lists {shown}, not the app's pages {NAVIGATION}"
            assert page.get_by_text("common", exact=True).count() == 0, "a page named 'common' is listed"
            expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
            expect(page).to_have_title(tab)  # every page's tab had said "digitrec — handwritten digits"
            assert page.url.rstrip("/").endswith(path), page.url
            main_width = page.locator('[data-testid="stMainBlockContainer"]').bounding_box()["width"]
            assert main_width > CENTERED_MAX_WIDTH + 100, \
                (f"the page is {main_width:.0f} px wide in a {VIEWPORT['width']} px window: "
                 "not the wide layout")
            no_tracebacks(page)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"direct_link_{path.strip('/')}.png"), full_page=True)
    finally:
        context.close()


def test_models_page_asks_before_promoting_a_worse_model_or_deleting(page, app, tiny_model):
    """A candidate worse than the active model on some digits is promoted only after a dialog
    names them; Delete asks first; Roll back is disabled when there is nothing to go back to."""
    from digitrec import registry

    candidate = "mnist-cnn-20000101-000000-tiny"
    open_app(page, app.url, "/models")  # the app's model folder is seeded with the committed model
    shutil.copytree(tiny_model, app.models / candidate)
    open_app(page, app.url, "/models")
    roll_back = page.get_by_role("button", name="Roll back")
    if registry.rollback_target(app.models) is None:
        expect(roll_back).to_be_disabled()
    else:
        expect(roll_back).to_be_enabled()
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name=candidate).click()
    wait_settled(page)
    page.get_by_role("button", name="Promote to active").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=RERUN_TIMEOUT_MS * 2)  # both models are evaluated first
    expect(dialog).to_contain_text("worse than the active model")
    expect(dialog.get_by_role("button", name="Promote anyway")).to_be_visible()
    park_mouse(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "models_promote_dialog.png"))
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert registry.active_version(app.models) != candidate

    page.get_by_role("button", name="Delete", exact=True).click()
    expect(dialog).to_contain_text("cannot be undone")
    assert (app.models / candidate).is_dir()  # only asked
    dialog.get_by_role("button", name="Delete for good").click()
    expect(page.get_by_text(f"Deleted {candidate}")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    assert not (app.models / candidate).exists()
    no_tracebacks(page)


def test_models_page_fits_a_phone(phone_page, app_url):
    """At 390x844 nothing but the table scrolls sideways, and every action button is on screen."""
    open_app(phone_page, app_url, "/models")
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for name in ("Promote to active", "Roll back", "Delete", "Download .keras", "Download .tflite"):
        box = phone_page.get_by_role("button", name=name, exact=True).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], name
    no_tracebacks(phone_page)


def test_retrain_in_the_browser_then_promote_and_draw_uses_it(page, app):
    """Start a tiny training from the Retrain page, watch it, promote it, see Draw use it.

    Runs last: it changes the app's active model.
    """
    open_app(page, app.url, "/retrain")
    epochs = page.get_by_label("Epochs", exact=True)
    epochs.fill("1")
    share = page.locator('[data-testid="stSlider"]').filter(has_text="Share of MNIST").get_by_role("slider")
    share.focus()
    page.keyboard.press("Home")  # 0.01
    for _ in range(9):
        page.keyboard.press("ArrowRight")  # up to 0.10: a few thousand digits, a quick real run
    expect(share).to_have_attribute("aria-valuetext", "0.10")
    page.get_by_text("Pen digits", exact=True).click()  # MNIST only: quicker
    # No not-a-digit head of its own (a minute more; tests/test_train.py fits one): the gate judges
    page.get_by_text("Not-a-digit head", exact=True).click()
    expect(page.get_by_role("switch", name="Not-a-digit head")).not_to_be_checked()
    page.get_by_role("button", name="Start training").click()
    expect(page.locator('[data-testid="stProgress"]').first).to_be_visible(timeout=TIMEOUT_MS)
    finished = page.get_by_text(re.compile(r"Your training finished: candidate"))
    expect(finished).to_be_visible(timeout=600_000)
    expect(page.locator('[data-testid="stVegaLiteChart"]').first).to_be_visible()  # the curves
    version = re.search(r"candidate (\S+) saved", finished.inner_text()).group(1)
    # The training process runs only the training module: it never re-runs the app (whose
    # Streamlit calls would log "missing ScriptRunContext"), and its TensorFlow start-up
    # chatter goes to its own log file.
    server_log = app.log.read_text(errors="replace")
    assert "ScriptRunContext" not in server_log
    assert not re.search(r"oneDNN|cuda|absl::InitializeLog|tensorflow", server_log), server_log[-2000:]
    # Exact: the "Your training finished: candidate ..." line, still on the page at times, matched too.
    expect(page.get_by_text(f"Candidate {version}", exact=True)).to_be_visible(timeout=RERUN_TIMEOUT_MS * 2)
    no_tracebacks(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    park_mouse(page)
    page.screenshot(path=str(ARTIFACTS / "retrain_evaluation.png"), full_page=True)
    # The form to train another counts down the cool-down before anyone clicks Start
    expect(page.get_by_text(re.compile(r"the next one can start in \d+ s"))).to_be_visible()
    expect(page.get_by_role("button", name="Start training")).to_be_disabled()
    page.get_by_role("button", name=f"Promote {version} to active").click()
    # A one-epoch candidate is worse than the committed model on some digits: the page asks first.
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("worse than the active model", timeout=RERUN_TIMEOUT_MS)
    assert (app.models / "ACTIVE").read_text().strip() != version
    dialog.get_by_role("button", name="Promote anyway").click()
    expect(page.get_by_text(f"{version} is now active")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    assert (app.models / "ACTIVE").read_text().strip() == version

    open_app(page, app.url, "/")
    expect(page.get_by_text(f"Model {version}")).to_be_visible(timeout=RERUN_TIMEOUT_MS)
    no_tracebacks(page)


# Streamlit's deprecation notices ("Please replace ... will be removed after ..."), any
# logger's WARNING/ERROR line, Python warnings, tracebacks, and absl/TensorFlow W/E/F lines.
LOG_PROBLEM = re.compile(r"(?i:deprecat|warn|will be removed|traceback)|\b(?:WARNING|ERROR|CRITICAL)\b"
                         r"|^[WEF]\d{4} ")



def test_server_log_stays_clean(page, app, held_out_digits, request):
    """Keep this test last: after every test above has used the app (drawing, uploading,
    saving, training, promoting), and after one more visit to every page, the server log has
    no deprecation notice, warning or traceback (Streamlit logs one for each deprecated
    argument on every rerun, e.g. use_container_width)."""
    in_this_module = [item for item in request.session.items if item.module is request.module]
    assert in_this_module[-1] is request.node, \
        f"{request.node.name} must run after every other browser test: move it to the end of the file"
    open_app(page, app.url, "/")
    draw(page, digit_strokes(held_out_digits[8]))
    read_metric(page, "Prediction")
    for path in ("/samples", "/retrain", "/models"):
        open_app(page, app.url, path)
        no_tracebacks(page)
    time.sleep(1)  # let the server write out what these runs logged
    lines = app.log.read_text(errors="replace").splitlines()
    problems = [line for line in lines if LOG_PROBLEM.search(line)]
    assert not problems, (f"the server log has {len(problems)} warning lines, e.g.:\n"
                          + "\n".join(problems[:15]))
