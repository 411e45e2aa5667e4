"""Load: N concurrent sessions drawing and predicting against one app server.

    python -m benchmarks.load [--sessions 1 5 20] [--seconds 60] [--with-training]
    python -m benchmarks.load --replicas 2 --samples-url postgresql://... --sessions 40

With --replicas N, N app servers run side by side on one model folder and, with
--samples-url, one PostgreSQL samples database (several replicas behind a load balancer with
sticky sessions): session i speaks to replica i mod N for its whole life, as a sticky load
balancer would keep it. Figures are reported in all and per replica.

Step 1 records what a browser really sends: headless Chromium (Playwright, Debian's chromium)
opens the Draw page and draws real pendigits trajectories of held-out writers with the
mouse, one digit per fresh session; the websocket frame the page sends when the pen lifts
(a Streamlit BackMsg carrying the canvas drawing) is kept with the digit's label.
Step 2 replays them: N sessions speak the Streamlit websocket protocol to the server, each
sending drawings one after another with a 1 s pause (a person looking at the answer) and
reading the answer the server streams back. The server does for each exactly what it does
for a stroke from a browser: decode the drawing, preprocess, predict, render the page.
Browsers would compete with the server for this machine's two cores, so they only record.

Reported per N: drawings served, errors (an exception on the page, no Prediction, or no
answer within 30 s), misreads (Prediction differs from the label), the server-side time from
script start to result rendered (p50/p95, recorded by the page through DIGITREC_TIMING_LOG)
and the round trip a client waits until the whole page has rerun.
--with-training runs a training job beside it (nice 10, as the Retrain page's job does).
Target (issue #5): 20 sessions, zero errors, server p95 <= 250 ms.
"""

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np

from digitrec import timing
from digitrec.data import load_pendigits, place_strokes

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
ANSWER_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workdir: Path, timing_log: Path, log: Path | None = None, samples_url: str | None = None):
    """Start the app on a free port with its own samples db (or the PostgreSQL `samples_url`)
    and the models in `workdir`; `log`: the server's output."""
    port = free_port()
    env = {**os.environ, "DIGITREC_SAMPLES_DB": str(workdir / "samples.db"),
           "DIGITREC_MODELS_DIR": str(workdir / "models"), "DIGITREC_TIMING_LOG": str(timing_log)}
    if samples_url:
        env["DIGITREC_SAMPLES_URL"] = samples_url
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL if log is None else log.open("ab"),
        stderr=subprocess.DEVNULL if log is None else subprocess.STDOUT)
    for _ in range(120):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return process, port
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("the app did not start")


def record_drawings(port: int, digits) -> tuple[bytes, list[tuple[bytes, int]]]:
    """Draw each digit in a fresh browser session; keep the frames the page sends."""
    from playwright.sync_api import sync_playwright

    opening, drawings = None, []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        for digit in digits:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            sent = []
            page.on("websocket",
                    lambda ws, sent=sent: ws.on("framesent", lambda payload: sent.append(payload)))
            page.goto(f"http://127.0.0.1:{port}/")
            canvas = page.locator("canvas.upper-canvas").first
            canvas.wait_for(timeout=60000)
            page.wait_for_timeout(500)
            box = canvas.bounding_box()
            for stroke in place_strokes(digit.strokes, 190, (140, 140)):
                page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
                page.mouse.down()
                for x, y in stroke[1:]:
                    page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
                page.mouse.up()
                page.wait_for_timeout(400)
            page.locator('[data-testid="stMetricValue"]').first.wait_for(timeout=60000)
            opening = opening or sent[0]
            page.wait_for_timeout(800)  # the details the browser asks for once the answer shows
            frame, details = split_frames(sent)
            drawings.append(Drawing(frame, digit.label, details))
            page.close()
        browser.close()
    return opening, drawings


class Drawing(NamedTuple):
    """A drawing as the browser sent it: the canvas fragment's rerun (the whole drawing), its
    label, and the rerun of the details fragment the browser asks for once the answer shows."""

    frame: bytes
    label: int
    details: bytes | None = None


def split_frames(sent: list) -> tuple[bytes, bytes | None]:
    """(the last canvas frame, the details frame that followed it) of one drawing's frames.

    The first fragment rerun a drawing sends is the canvas fragment's; the page's other fragment
    (the details: what the model sees, "Right?") is rerun by the browser after each answer.
    """
    from streamlit.proto.BackMsg_pb2 import BackMsg

    reruns = []
    for frame in sent:
        frame = frame if isinstance(frame, bytes) else frame.encode()
        message = BackMsg()
        message.ParseFromString(frame)
        if message.WhichOneof("type") == "rerun_script" and message.rerun_script.fragment_id:
            reruns.append((message.rerun_script.fragment_id, frame))
    if not reruns:
        raise RuntimeError("the browser sent no drawing")
    canvas_fragment = reruns[0][0]
    last = max(i for i, (fragment, _) in enumerate(reruns) if fragment == canvas_fragment)
    details = next((frame for fragment, frame in reruns[last + 1:] if fragment != canvas_fragment), None)
    return reruns[last][1], details


async def read_until_finished(socket_, expected_label):
    """Read ForwardMsgs until the rerun finishes; return (error, misread)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    error, prediction = None, None
    while True:
        message = ForwardMsg()
        message.ParseFromString(await socket_.recv())
        kind = message.WhichOneof("type")
        if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            if element.WhichOneof("type") == "exception":
                error = f"exception: {element.exception.message}"
            elif element.WhichOneof("type") == "metric" and element.metric.label == "Prediction":
                prediction = element.metric.body
        elif kind == "script_finished":
            break
    if expected_label is None:
        return error, False
    if prediction is None:
        return error or "no Prediction shown", False
    return error, prediction != str(expected_label)


async def session(port, opening, drawings, deadline, results, seed):
    import websockets

    rng = random.Random(seed)
    async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                  max_size=None) as socket_:
        await socket_.send(opening)
        await asyncio.wait_for(read_until_finished(socket_, None), ANSWER_TIMEOUT_S)
        while time.monotonic() < deadline:
            drawing = drawings[rng.randrange(len(drawings))]
            frame, label = drawing.frame, drawing.label
            sent = time.monotonic()
            await socket_.send(frame)
            try:
                error, misread = await asyncio.wait_for(read_until_finished(socket_, label), ANSWER_TIMEOUT_S)
            except TimeoutError:
                error, misread = "no answer within 30 s", False
            results["round_trip_ms"].append((time.monotonic() - sent) * 1000)
            results["served"] += error is None
            results["errors"].extend([error] if error else [])
            results["misreads"] += bool(misread)
            await asyncio.sleep(1.0 + rng.random() * 0.2)  # a person looks at the answer


async def run_load(ports, opening, drawings, sessions, seconds):
    """`sessions` sessions spread over the servers on `ports` (session i on ports[i % N]);
    one results dict per server."""
    results = [{"served": 0, "errors": [], "misreads": 0, "round_trip_ms": []} for _ in ports]
    deadline = time.monotonic() + seconds
    await asyncio.gather(*[session(ports[seed % len(ports)], opening, drawings, deadline,
                                   results[seed % len(ports)], seed) for seed in range(sessions)])
    return results


def report_line(name, sessions, results, timing_logs) -> str:
    """One table row: drawings served, errors, misreads, server and round-trip percentiles."""
    served = sum(r["served"] for r in results)
    errors = sum(len(r["errors"]) for r in results)
    misreads = sum(r["misreads"] for r in results)
    server_ms = [ms for log in timing_logs if log.exists() for ms in timing.read(log).get("draw", [])]
    s50, s95 = np.percentile(server_ms or [np.nan], [50, 95])
    r50, r95 = np.percentile([ms for r in results for ms in r["round_trip_ms"]] or [np.nan], [50, 95])
    return (f"{name:>8} {sessions:>8} {served:>7} {errors:>6} {misreads:>8} "
            f"{s50:>8.1f}ms {s95:>8.1f}ms {r50:>12.0f}ms {r95:>5.0f}ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--with-training", action="store_true")
    parser.add_argument("--replicas", type=int, default=1, help="app servers side by side (one model folder)")
    parser.add_argument("--samples-url", help="a PostgreSQL URL the replicas share for samples "
                                              "(default: DIGITREC_SAMPLES_URL; else one SQLite file)")
    args = parser.parse_args()
    samples_url = args.samples_url or os.environ.get("DIGITREC_SAMPLES_URL")
    held_out = [d for d in load_pendigits() if d.writer > 20]
    digits = [next(d for d in held_out if d.label == label and d.writer == 21 + label) for label in range(10)]
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        timing_logs = [workdir / f"timing-{index}.log" for index in range(args.replicas)]
        servers, ports = [], []
        trainer = None
        try:
            for timing_log in timing_logs:  # one model folder for all, as on a shared volume
                server, port = start_server(workdir, timing_log, samples_url=samples_url)
                servers.append(server)
                ports.append(port)
            print(f"{args.replicas} replica(s) on ports {ports}, samples in "
                  + ("PostgreSQL" if samples_url else "SQLite"))
            opening, drawings = record_drawings(ports[0], digits)
            print(f"recorded {len(drawings)} real drawings (held-out writers) from headless Chromium")
            if args.with_training:
                trainer = subprocess.Popen(
                    ["nice", "-n", "10", sys.executable, "-m", "digitrec", "train", "--architecture",
                     "standard", "--epochs", "30", "--models-dir", str(workdir / "trained")],
                    cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                time.sleep(30)  # past loading data, into training proper
            print(f"{'server':>8} {'sessions':>8} {'served':>7} {'errors':>6} {'misreads':>8} "
                  f"{'server p50':>10} {'server p95':>10} {'round trip p50':>14} {'p95':>7}"
                  + ("   (a training job is running)" if trainer else ""))
            for sessions in args.sessions:
                for timing_log in timing_logs:
                    timing_log.unlink(missing_ok=True)
                results = asyncio.run(run_load(ports, opening, drawings, sessions, args.seconds))
                if len(ports) > 1:
                    for index, (result, timing_log) in enumerate(zip(results, timing_logs)):
                        count = len(range(index, sessions, len(ports)))
                        print(report_line(f"#{index + 1}", count, [result], [timing_log]))
                print(report_line("all", sessions, results, timing_logs), flush=True)
                for error in sorted({e for result in results for e in result["errors"]})[:5]:
                    print(f"         error: {error}")
        finally:
            if trainer:
                trainer.kill()
            for server in servers:
                server.terminate()
                server.wait(10)


if __name__ == "__main__":
    main()
