"""Latency a user feels: from the mouse-up that ends a stroke to the new Prediction on the page.

    python -m benchmarks.browser_latency [--digits 30] [--viewport 1400x1000] [--repo DIR ...]

--repo runs the app from other checkouts too (e.g. an older commit unpacked with `git archive`),
taking turns digit by digit so that all of them meet the same load on this machine.

Headless Chromium (Playwright, Debian's chromium) opens the Draw page of a fresh app server and
draws real pen digits of held-out pendigits writers with the mouse, clearing the canvas between
digits. A script injected before the page loads timestamps, in the browser's own clock:

- `up`: the pointerup that ends a stroke (capture phase on window, so before the canvas sees it);
- `sent`: the first websocket message the page sends after it (the canvas component's drawing);
- `shown`: the first DOM mutation after `sent` that leaves the Prediction metric showing a text
  other than before the stroke (a MutationObserver; strokes that leave the answer as it was
  cannot be timed this way and are counted apart);
- `details`: the first DOM mutation after `shown` that leaves the "Top 3" line (it comes with the
  rest of the result: what the model sees, "Right?") showing a text other than before the
  stroke. The Draw page sends these after the answer, in a second rerun the browser asks for
  once the answer is on the page; the figure says how long after the answer they follow.

The figure is split into the component's own part (`sent - up`: streamlit-drawable-canvas 0.13
waits 200 ms after the last change before it sends) and ours (`shown - sent`: websocket, the
rerun on the server, the deltas back, React rendering them). Both machines are this one, so
the browser competes with the server for the CPU as it would not on a real visitor's device.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
CANVAS = "canvas.upper-canvas"
PROMPT = "Draw a digit in the box"

# Injected before any page script runs (page.add_init_script).
INSTRUMENT_JS = """(() => {
  const latency = window.__digitrecLatency = {strokes: [], pending: null};
  const metricText = () => {
    const element = document.querySelector('[data-testid="stMetricValue"]');
    return element ? element.textContent : null;
  };
  const detailsText = () => {
    for (const element of document.querySelectorAll('[data-testid="stMarkdownContainer"]')) {
      if (element.textContent.startsWith('Top 3:')) return element.textContent;
    }
    return null;
  };
  window.addEventListener('pointerup', () => {
    latency.pending = {up: performance.now(), sent: null, reply: null, shown: null,
                       before: metricText(), text: null, details: null, detailsBefore: detailsText()};
    latency.strokes.push(latency.pending);
  }, true);
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    const pending = latency.pending;
    if (pending && pending.sent === null) pending.sent = performance.now();
    if (!this.digitrecListening) {  // when the first answer to it arrives
      this.digitrecListening = true;
      this.addEventListener('message', () => {
        const pending = latency.pending;
        if (pending && pending.sent !== null && pending.reply === null) pending.reply = performance.now();
      });
    }
    return send.call(this, data);
  };
  new MutationObserver(() => {
    const pending = latency.pending;
    if (!pending || pending.sent === null) return;
    if (pending.shown !== null) {  // the answer is shown: wait for the rest (not before: no extra work)
      if (pending.details === null) {
        const details = detailsText();
        if (details !== null && details !== pending.detailsBefore) pending.details = performance.now();
      }
      return;
    }
    const text = metricText();
    if (text !== null && text !== pending.before) {
      pending.shown = performance.now();
      pending.text = text;
    }
  }).observe(document, {subtree: true, childList: true, characterData: true});
})();"""

STROKE_COUNT_JS = "() => window.__digitrecLatency.strokes.length"
STROKE_SHOWN_JS = "i => { const s = window.__digitrecLatency.strokes[i]; return !!(s && s.shown !== null); }"
STROKES_JS = "() => window.__digitrecLatency.strokes.map(s => [s.up, s.sent, s.reply, s.shown, s.details])"
IDLE_JS = """() => document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]')
  !== null && document.querySelector('[data-stale="true"]') === null"""


def percentile(values, share: float) -> float:
    """The `share` quantile of values (nearest rank on the sorted list)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def settle(page, timeout_ms: int = 30_000) -> None:
    """Wait until no script runs and nothing is stale, twice 200 ms apart."""
    calm = 0
    while calm < 2:
        page.wait_for_function(IDLE_JS, timeout=timeout_ms)
        page.wait_for_timeout(200)
        calm = calm + 1 if page.evaluate(IDLE_JS) else 0


def draw_stroke(page, box, stroke) -> int:
    """Draw one stroke with the mouse; returns its index in the recorded strokes."""
    index = page.evaluate(STROKE_COUNT_JS)
    (x0, y0), rest = stroke[0], stroke[1:]
    page.mouse.move(box["x"] + x0, box["y"] + y0)
    page.mouse.down()
    for x, y in rest or [(x0 + 1, y0 + 1)]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
    page.mouse.up()
    return index


def measure_digits(page, digits, size: int = 280, clear_between: bool = True,
                   timeout_ms: int = 30_000) -> list[tuple[float, float] | None]:
    """Draw each digit (strokes of a PenDigit) on the open Draw page, one stroke at a time.

    The page must have been opened with INSTRUMENT_JS injected. Returns, per stroke, the
    component's part, ours, the time from sending to the server's first reply and from the
    answer to the rest of the result (None if that was not seen) in ms, or None where the
    answer did not change.
    """
    from digitrec.data import place_strokes

    results = []
    for number, digit in enumerate(digits):
        if number and clear_between:
            page.get_by_role("button", name="Clear", exact=True).click()
            page.get_by_text(PROMPT).first.wait_for(timeout=timeout_ms)
            settle(page, timeout_ms)
        canvas = page.locator(CANVAS).first
        canvas.wait_for(state="visible", timeout=timeout_ms)
        box = canvas.bounding_box()
        for stroke in place_strokes(digit.strokes, size * 0.7, (size / 2, size / 2)):
            index = draw_stroke(page, box, stroke)
            try:
                page.wait_for_function(STROKE_SHOWN_JS, arg=index, timeout=3_000)
            except Exception:  # noqa: BLE001 - the answer stayed the same: not timed
                pass
            settle(page, timeout_ms)
            up, sent, reply, shown, details = page.evaluate(STROKES_JS)[index]
            results.append(None if shown is None or sent is None or reply is None
                           else (sent - up, shown - sent, reply - sent,
                                 None if details is None else details - shown))
    return results


def describe(results) -> str:
    """The figures as one paragraph: totals, the component's part and ours, p50 and p95."""
    timed = [r for r in results if r is not None]
    if not timed:
        return f"no stroke changed the answer ({len(results)} strokes)"
    component = [c for c, _, _, _ in timed]
    ours = [o for _, o, _, _ in timed]
    reply = [r for _, _, r, _ in timed]
    total = [c + o for c, o, _, _ in timed]
    details = [d for _, _, _, d in timed if d is not None]
    then = (f"; the rest of the result (top 3, what the model sees, 'Right?') followed the answer after "
            f"p50 {percentile(details, .5):.1f} ms / p95 {percentile(details, .95):.1f} ms "
            f"({len(details)} strokes)" if details else "")
    return (f"mouse-up -> new Prediction on the page, {len(timed)} strokes timed "
            f"({len(results) - len(timed)} left the answer unchanged): "
            f"total p50 {percentile(total, .5):.0f} ms / p95 {percentile(total, .95):.0f} ms; "
            f"canvas component's send delay p50 {percentile(component, .5):.0f} ms; "
            f"ours (websocket send -> prediction in the DOM) p50 {percentile(ours, .5):.1f} ms / "
            f"p95 {percentile(ours, .95):.1f} ms (mean {statistics.fmean(ours):.1f} ms), "
            f"of which until the server's first reply arrives p50 {percentile(reply, .5):.1f} ms{then}")


def held_out_digits(count: int):
    """`count` pen digits of held-out writers, labels cycling 0-9, each unlike the one before."""
    from digitrec.data import load_pendigits, split_writers

    _, held_out = split_writers(load_pendigits())
    chosen, used = [], set()
    while len(chosen) < count:
        label = len(chosen) % 10
        digit = next(d for d in held_out if d.label == label and id(d) not in used)
        used.add(id(digit))
        chosen.append(digit)
    return chosen


def start_app(repo: Path, workdir: Path):
    """`streamlit run streamlit_app.py` of the checkout `repo`, with its own data; (process, url)."""
    import os
    import subprocess
    import sys
    import urllib.request

    from benchmarks.load import free_port

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "DIGITREC_SAMPLES_DB": str(workdir / "samples.db"),
           "DIGITREC_MODELS_DIR": str(workdir / "models"), "DIGITREC_TIMING_LOG": str(workdir / "timing.log"),
           "PYTHONPATH": str(repo)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return process, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the app in {repo} did not start")


def main():
    from playwright.sync_api import sync_playwright

    from digitrec import timing

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=30)
    parser.add_argument("--viewport", default="1400x1000")
    parser.add_argument("--repo", type=Path, nargs="*", default=[],
                        help="other checkouts to measure the same way, taking turns")
    args = parser.parse_args()
    width, height = (int(v) for v in args.viewport.split("x"))
    repos = [Path(__file__).resolve().parents[1], *[repo.resolve() for repo in args.repo]]
    digits = held_out_digits(args.digits)
    results = {repo: [] for repo in repos}
    with tempfile.TemporaryDirectory() as folder:
        apps = {repo: start_app(repo, Path(folder) / str(index)) for index, repo in enumerate(repos)}
        started = time.monotonic()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                     args=CHROMIUM_ARGS)
                pages = {}
                for repo, (_, url) in apps.items():
                    pages[repo] = browser.new_page(viewport={"width": width, "height": height})
                    pages[repo].add_init_script(INSTRUMENT_JS)
                    pages[repo].goto(url)
                    pages[repo].locator(CANVAS).first.wait_for(timeout=120_000)
                    settle(pages[repo])
                for number, digit in enumerate(digits):  # take turns: the same load for each
                    for repo in repos:
                        if number:
                            pages[repo].get_by_role("button", name="Clear", exact=True).click()
                            pages[repo].get_by_text(PROMPT).first.wait_for(timeout=30_000)
                            settle(pages[repo])
                        results[repo] += measure_digits(pages[repo], [digit], clear_between=False)
                browser.close()
        finally:
            for process, _ in apps.values():
                process.terminate()
                process.wait(timeout=10)
        for index, repo in enumerate(repos):
            times = timing.read(Path(folder) / str(index) / "timing.log")
            print(f"{repo}:\n  {describe(results[repo])}")
            for name, what in (("draw-answer", "script start -> answer rendered"),
                               ("draw", "script start -> end of the stroke's rerun"),
                               ("draw-details", "the rest's own rerun: start -> rendered")):
                if times.get(name):
                    print(f"  server time per stroke ({what}), p50 {percentile(times[name], .5):.1f} ms / "
                          f"p95 {percentile(times[name], .95):.1f} ms ({len(times[name])} runs)")
    print(f"{time.monotonic() - started:.0f} s of drawing")


if __name__ == "__main__":
    main()
