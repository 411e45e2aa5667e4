"""Load: N concurrent browser sessions drawing and predicting against one app server.

    python -m benchmarks.load [--sessions 1 5 20] [--seconds 60] [--with-training]

Each session is a real Chromium page (Playwright, Debian's chromium) on the Draw page that
draws real pendigits trajectories with the mouse, waits for the Prediction, clears and draws
again after a short pause, like a person. Reported per N: predictions served, errors
(no answer within 30 s, or an exception on the page), the server-side time per rerun from
script start to result rendered (p50/p95, recorded by the page through DIGITREC_TIMING_LOG)
and the time a user waits from mouse-up to the new answer in the browser.
--with-training also runs a training job in the background (at nice 10, as the Retrain
page's job does) to show predictions keep their latency. Target (issue #5): 20 sessions,
zero errors, server p95 <= 250 ms.
"""

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from digitrec import timing
from digitrec.data import load_pendigits, place_strokes

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workdir: Path, timing_log: Path):
    port = free_port()
    env = {**os.environ, "DIGITREC_SAMPLES_DB": str(workdir / "samples.db"),
           "DIGITREC_MODELS_DIR": str(workdir / "models"), "DIGITREC_TIMING_LOG": str(timing_log)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the app did not start")


async def session(browser, url, digits, deadline, results):
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        await page.goto(url)
        canvas = page.locator("canvas.upper-canvas").first
        await canvas.wait_for(timeout=60000)
        index = 0
        while time.monotonic() < deadline:
            digit = digits[index % len(digits)]
            index += 1
            box = await canvas.bounding_box()
            for stroke in place_strokes(digit.strokes, 190, (140, 140)):
                await page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
                await page.mouse.down()
                for x, y in stroke[1:]:
                    await page.mouse.move(box["x"] + x, box["y"] + y)
                await page.mouse.up()
            lifted = time.monotonic()
            try:
                await page.locator('[data-testid="stMetricValue"]').first.wait_for(timeout=30000)
                results["wait_ms"].append((time.monotonic() - lifted) * 1000)
                results["served"] += 1
                if await page.locator('[data-testid="stException"]').count():
                    results["errors"] += 1
            except Exception:  # noqa: BLE001  a timeout is what we count as an error here
                results["errors"] += 1
            await page.get_by_role("button", name="Clear").click()
            await page.locator('[data-testid="stMetricValue"]').first.wait_for(state="detached", timeout=30000)
            await asyncio.sleep(1.0)  # a person looks at the answer before drawing again
    finally:
        await page.close()


async def run_load(url, sessions, seconds, digits):
    from playwright.async_api import async_playwright

    results = {"served": 0, "errors": 0, "wait_ms": []}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                   args=CHROMIUM_ARGS)
        deadline = time.monotonic() + seconds
        await asyncio.gather(*[session(browser, url, digits[i::sessions] or digits, deadline, results)
                               for i in range(sessions)], return_exceptions=False)
        await browser.close()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--with-training", action="store_true")
    args = parser.parse_args()
    digits = [d for d in load_pendigits() if d.writer > 20][:200]
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        timing_log = workdir / "timing.log"
        server, url = start_server(workdir, timing_log)
        trainer = None
        try:
            if args.with_training:
                trainer = subprocess.Popen(
                    ["nice", "-n", "10", sys.executable, "-m", "digitrec", "train", "--architecture",
                     "standard", "--epochs", "30", "--models-dir", str(workdir / "trained")],
                    cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(20)  # let it get past loading data into training proper
            print(f"{'sessions':>8} {'served':>7} {'errors':>6} {'server p50':>10} {'server p95':>10} "
                  f"{'user wait p50':>13} {'user wait p95':>13}" + ("   (training running)" if trainer else ""))
            for sessions in args.sessions:
                timing_log.unlink(missing_ok=True)
                results = asyncio.run(run_load(url, sessions, args.seconds, digits))
                server_ms = timing.read(timing_log).get("draw", [0.0]) if timing_log.exists() else [0.0]
                s50, s95 = np.percentile(server_ms, [50, 95])
                w50, w95 = np.percentile(results["wait_ms"] or [0.0], [50, 95])
                print(f"{sessions:>8} {results['served']:>7} {results['errors']:>6} {s50:>8.1f}ms {s95:>8.1f}ms "
                      f"{w50:>11.0f}ms {w95:>11.0f}ms", flush=True)
        finally:
            if trainer:
                trainer.kill()
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
