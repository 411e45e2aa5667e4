"""Soak: N sessions for M minutes drawing, uploading, saving, paging and deleting; server RSS.

    python -m benchmarks.soak [--sessions 20] [--minutes 10] [--seed-samples 5000]

A fresh server (its own samples database, seeded with --seed-samples real pen digits, and its
own models folder) is started; headless Chromium records real drawings as load.py does, then
N sessions speak the Streamlit websocket protocol and each, until the time is up, does what
a visitor does, with a 2-4 s pause after every answer:
  draw    send a recorded drawing (the Draw page reads it: a Prediction)
  save    press "Yes, it is a …" under the last drawing (a "Saved sample" message)
  upload  upload a photo over HTTP (PUT /_stcore/upload_file, XSRF token as a browser sends
          it), set the uploader's widget state (a Prediction) and, as a browser does, delete
          the file it replaced (DELETE on its URL)
  samples open the Samples page on a random page of the gallery (the "Samples" metric)
  delete  press a Delete button of the gallery page shown (the page again, one sample fewer)
The server's RSS (/proc/<pid>/status) is sampled every 10 s. Printed: the RSS series, its
growth from minute 2 to the end (target <= 10%), the RSS 30 s after the sessions closed,
counts per action, errors (an exception on a page, an error message, a missing answer, no
answer in 30 s: target 0) and warnings or tracebacks in the server's log.
"""

import argparse
import asyncio
import io
import random
import sqlite3
import statistics
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec.data import draw_pen_digit, load_pendigits, place_strokes, render_strokes
from digitrec.preprocess import preprocess
from digitrec.store import SampleStore
from digitrec.upload import stored_drawing

from benchmarks.load import ANSWER_TIMEOUT_S, record_drawings, start_server

SAMPLE_EVERY_S = 10
ACTIONS = {"draw": 40, "save": 10, "upload": 10, "samples": 30, "delete": 10}
PAUSE_S = (2.0, 4.0)


# ---- setup ---------------------------------------------------------------------------------

def seed_samples(path: Path, count: int, digits) -> None:
    """`count` samples in a fresh database: real drawings, copied row by row in SQL."""
    store = SampleStore(path)
    rng = np.random.default_rng(0)
    for digit in digits[:min(count, 100)]:
        drawing = draw_pen_digit(digit, rng)
        store.add(preprocess(drawing).model_input, digit.label, predicted=digit.label,
                  probabilities=np.eye(10)[digit.label] * 0.9 + 0.01, model_version="soak-seed",
                  drawing_png=stored_drawing(drawing))
    with sqlite3.connect(path) as conn:
        columns = "created, label, predicted, probabilities, model_version, model_input, drawing_png"
        while conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0] < count:
            missing = count - conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
            conn.execute(f"INSERT INTO samples ({columns}) SELECT {columns} FROM samples"
                         " ORDER BY id LIMIT ?", (missing,))


def photos(digits) -> list[tuple[str, bytes, str]]:
    """Photos of pen digits as a phone or scanner makes them: dark ink on lit paper, JPEG/PNG."""
    made = []
    for index, (digit, size, fmt) in enumerate(zip(digits, (600, 1600, 3000), ("PNG", "JPEG", "JPEG"))):
        ink = render_strokes(place_strokes(digit.strokes, size * 0.6, (size / 2, size / 2)), size,
                             brush=size / 18)[..., 3]
        light = np.linspace(235, 190, size)[None, :]  # uneven light across the page
        paper = (light - ink.astype(np.float64) * 0.7).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(np.stack([paper] * 3, axis=-1))
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        made.append((f"digit{index}.{fmt.lower()}", buffer.getvalue(),
                     "image/png" if fmt == "PNG" else "image/jpeg"))
    return made


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---- the protocol --------------------------------------------------------------------------

@dataclass
class Page:
    """What one script run showed."""

    metrics: dict = field(default_factory=dict)
    buttons: dict = field(default_factory=dict)  # label -> widget id (last one wins)
    delete_ids: list = field(default_factory=list)
    number_inputs: dict = field(default_factory=dict)
    uploader_id: str | None = None
    alerts: list = field(default_factory=list)  # (format, body)
    exceptions: list = field(default_factory=list)


async def read_run(socket_, session) -> Page:
    """Read ForwardMsgs until the script run finishes (following st.rerun to its end)."""
    from streamlit.proto.Alert_pb2 import Alert
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    page = Page()
    while True:
        message = ForwardMsg()
        message.ParseFromString(await socket_.recv())
        kind = message.WhichOneof("type")
        if kind == "new_session":
            session.session_id = message.new_session.initialize.session_id
        elif kind == "navigation":
            session.pages = {p.url_pathname or p.page_name: p.page_script_hash
                             for p in message.navigation.app_pages}
        elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            which = element.WhichOneof("type")
            if which == "exception":
                page.exceptions.append(f"{element.exception.type}: {element.exception.message}")
            elif which == "metric":
                page.metrics[element.metric.label] = element.metric.body
            elif which == "button":
                page.buttons[element.button.label] = element.button.id
                if element.button.label == "Delete":
                    page.delete_ids.append(element.button.id)
            elif which == "number_input":
                page.number_inputs[element.number_input.label] = element.number_input
            elif which == "file_uploader":
                page.uploader_id = element.file_uploader.id
            elif which == "alert":
                page.alerts.append((Alert.Format.Name(element.alert.format), element.alert.body))
        elif kind == "script_finished":
            if message.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                page = Page()  # st.rerun: what counts is the run that follows
                continue
            return page


class Session:
    """One visitor: a websocket, what the last run showed, and where they are."""

    def __init__(self, port, opening, drawings, photos_, rng, results):
        self.port, self.opening, self.drawings, self.photos = port, opening, drawings, photos_
        self.rng, self.results = rng, results
        self.session_id = None
        self.pages = {}
        self.page = Page()
        self.last_drawing = None  # (frame, yes button id) after a draw
        self.samples_page = 1
        self.where = "draw"  # the page the last full run showed
        self.uploaded = None  # the upload URL of the file in the uploader

    def back_msg(self, frame: bytes | None = None, page_hash: str | None = None, widgets=()):
        """A rerun request: a recorded one (widget states kept) or a fresh one on `page_hash`."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        message.ParseFromString(frame or self.opening)
        state = message.rerun_script
        del state.cached_message_hashes[:]  # get every element in full, never a reference
        if frame is None:
            del state.widget_states.widgets[:]
            state.page_script_hash = page_hash or ""
            state.page_name = ""
        for widget in widgets:
            state.widget_states.widgets.append(widget)
        return message.SerializeToString()

    async def run(self, socket_, data: bytes) -> Page:
        await socket_.send(data)
        self.page = await asyncio.wait_for(read_run(socket_, self), ANSWER_TIMEOUT_S)
        return self.page

    def check(self, action, page, expect_metric=None, expect_alert=None):
        problems = list(page.exceptions)
        problems += [f"{kind}: {body}" for kind, body in page.alerts if kind == "ERROR"]
        if expect_metric and expect_metric not in page.metrics:
            problems.append(f"no {expect_metric} shown")
        if expect_alert and not any(expect_alert in body for _, body in page.alerts):
            problems.append(f"no '{expect_alert}' message")
        self.results["done"][action] = self.results["done"].get(action, 0) + (not problems)
        self.results["errors"].extend(f"{action}: {problem}" for problem in problems)

    # -- actions --

    async def to_draw_page(self, socket_):
        """Open the Draw page (a canvas frame reruns its fragment, which lives on that page)."""
        if self.where != "draw":
            page = await self.run(socket_, self.back_msg(page_hash=self.pages.get("", "")))
            self.check("open Draw", page)
            self.where = "draw"

    async def draw(self, socket_):
        await self.to_draw_page(socket_)
        drawing = self.drawings[self.rng.randrange(len(self.drawings))]
        page = await self.run(socket_, self.back_msg(drawing.frame))
        self.check("draw", page, expect_metric="Prediction")
        self.last_drawing = None
        if drawing.details is not None:  # as the browser does once the answer shows
            page = await self.run(socket_, self.back_msg(drawing.details))
            self.check("details", page)
            yes = next((wid for label, wid in page.buttons.items() if label.startswith("Yes, it is a")), None)
            self.last_drawing = (drawing.details, yes) if yes else None

    async def save(self, socket_):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if self.last_drawing is None or self.where != "draw":
            return await self.draw(socket_)
        frame, yes = self.last_drawing
        page = await self.run(socket_,
                              self.back_msg(frame, widgets=[WidgetState(id=yes, trigger_value=True)]))
        self.check("save", page, expect_alert="Saved sample")
        self.last_drawing = None

    async def upload(self, socket_):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if self.uploader_id is None:
            return await self.draw(socket_)
        name, data, mime = self.photos[self.rng.randrange(len(self.photos))]
        file_id = uuid.uuid4().hex
        url = f"/_stcore/upload_file/{self.session_id}/{file_id}"
        await asyncio.to_thread(put_file, self.port, url, name, data, mime, self.results["xsrf"])
        state = WidgetState(id=self.uploader_id)
        info = state.file_uploader_state_value.uploaded_file_info.add()
        info.name, info.size, info.file_id = name, len(data), file_id
        info.file_urls.file_id, info.file_urls.upload_url, info.file_urls.delete_url = file_id, url, url
        page = await self.run(socket_, self.back_msg(page_hash=self.pages.get("", ""), widgets=[state]))
        self.where = "draw"
        self.check("upload", page, expect_metric="Prediction")
        # This rerun carried no canvas value (a browser would have sent the drawing along): the
        # page has no drawing now, so there is none to save.
        self.last_drawing = None
        if self.uploaded:  # a browser deletes the file a new one replaces in the uploader
            await asyncio.to_thread(delete_file, self.port, self.uploaded, self.results["xsrf"])
        self.uploaded = url

    def samples_widgets(self):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        number = self.results["page_input"]
        return [] if number is None else [WidgetState(id=number.id, int_value=self.samples_page)]

    async def samples(self, socket_):
        pages = self.results.get("gallery_pages", 1)
        self.samples_page = self.rng.randint(1, max(1, min(pages, 50)))
        page = await self.run(socket_, self.back_msg(page_hash=self.pages["samples"],
                                                     widgets=self.samples_widgets()))
        self.where = "samples"
        self.check("samples", page, expect_metric="Samples")
        if "Page" in page.number_inputs:
            self.results["page_input"] = page.number_inputs["Page"]
            self.results["gallery_pages"] = int(page.number_inputs["Page"].max)

    async def delete(self, socket_):
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if self.where != "samples" or not self.page.delete_ids:
            return await self.samples(socket_)
        target = self.page.delete_ids[self.rng.randrange(len(self.page.delete_ids))]
        page = await self.run(socket_, self.back_msg(
            page_hash=self.pages["samples"],
            widgets=self.samples_widgets() + [WidgetState(id=target, trigger_value=True)]))
        # The page asks first, in a dialog: press its "Delete #id".
        confirm = next((wid for label, wid in page.buttons.items() if label.startswith("Delete #")), None)
        if confirm is None:  # another session's delete moved this sample off the page (a browser
            self.results["raced"] += 1  # would show the same): no dialog, the gallery again
        else:
            page = await self.run(socket_, self.back_msg(
                page_hash=self.pages["samples"],
                widgets=self.samples_widgets() + [WidgetState(id=confirm, trigger_value=True)]))
        self.check("delete", page, expect_metric="Samples")

    async def __call__(self, deadline):
        import websockets

        async with websockets.connect(f"ws://127.0.0.1:{self.port}/_stcore/stream",
                                      subprotocols=["streamlit"], max_size=None) as socket_:
            page = await self.run(socket_, self.back_msg())
            self.uploader_id = page.uploader_id
            actions, weights = list(ACTIONS), list(ACTIONS.values())
            while time.monotonic() < deadline:
                action = self.rng.choices(actions, weights)[0]
                if action == "samples" and "samples" not in self.pages:
                    action = "draw"
                try:
                    await getattr(self, action)(socket_)
                except TimeoutError:
                    self.results["errors"].append(f"{action}: no answer within {ANSWER_TIMEOUT_S} s")
                except OSError as error:  # the upload's HTTP request
                    self.results["errors"].append(f"{action}: {type(error).__name__}: {error}")
                await asyncio.sleep(self.rng.uniform(*PAUSE_S))  # a person looks at the answer


def xsrf_cookie(port: int) -> str:
    """The XSRF cookie the server gives a browser (sent back as header and cookie on uploads)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            if name.strip() == "_streamlit_xsrf":
                return rest.split(";")[0]
    raise RuntimeError("the server set no _streamlit_xsrf cookie")


def put_file(port, url, name, data, mime, xsrf):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: {mime}\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{url}", data=body, method="PUT",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                 "X-Xsrftoken": xsrf, "Cookie": f"_streamlit_xsrf={xsrf}"})
    with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_S) as response:
        if response.status != 204:
            raise OSError(f"upload answered HTTP {response.status}")


def delete_file(port, url, xsrf):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{url}", method="DELETE",
                                     headers={"X-Xsrftoken": xsrf, "Cookie": f"_streamlit_xsrf={xsrf}"})
    with urllib.request.urlopen(request, timeout=ANSWER_TIMEOUT_S) as response:
        if response.status != 204:
            raise OSError(f"deleting an upload answered HTTP {response.status}")


async def sample_rss(pid, start, stop_event, series):
    while not stop_event.is_set():
        series.append((time.monotonic() - start, rss_mb(pid)))
        try:
            await asyncio.wait_for(stop_event.wait(), SAMPLE_EVERY_S)
        except TimeoutError:
            pass


async def soak(port, pid, opening, drawings, photos_, sessions, seconds):
    results = {"done": {}, "errors": [], "xsrf": xsrf_cookie(port), "page_input": None, "raced": 0}
    series: list[tuple[float, float]] = []
    start = time.monotonic()
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(pid, start, stop, series))
    deadline = start + seconds
    visitors = [Session(port, opening, drawings, photos_, random.Random(seed), results)
                for seed in range(sessions)]
    outcomes = await asyncio.gather(*[visitor(deadline) for visitor in visitors], return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            results["errors"].append(f"session ended: {type(outcome).__name__}: {outcome}")
    stop.set()
    await sampler
    await asyncio.sleep(30)  # sessions closed: does the memory come back?
    results["after_close"] = rss_mb(pid)
    return results, series


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed-samples", type=int, default=5000)
    args = parser.parse_args()
    pen = load_pendigits()
    held_out = [d for d in pen if d.writer > 20]
    digits = [next(d for d in held_out if d.label == label and d.writer == 21 + label) for label in range(10)]
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        started = time.monotonic()
        seed_samples(workdir / "samples.db", args.seed_samples, [d for d in pen if d.writer <= 20])
        print(f"seeded {SampleStore(workdir / 'samples.db').count()} samples in "
              f"{time.monotonic() - started:.0f} s", flush=True)
        log = workdir / "server.log"
        server, port = start_server(workdir, workdir / "timing.log", log=log)
        try:
            opening, drawings = record_drawings(port, digits)
            print(f"recorded {len(drawings)} real drawings; server RSS {rss_mb(server.pid):.0f} MB; "
                  f"{args.sessions} sessions for {args.minutes:g} min", flush=True)
            results, series = asyncio.run(soak(port, server.pid, opening, drawings, photos(digits[:3]),
                                               args.sessions, args.minutes * 60))
        finally:
            server.terminate()
            server.wait(10)
        remaining = SampleStore(workdir / "samples.db").count()
        server_log = log.read_text(errors="replace").splitlines()
    print("RSS (MB) every 10 s:", " ".join(f"{rss:.0f}" for _, rss in series))
    # A photo upload lifts the RSS for a moment, so minutes are compared by their medians
    # (and their lowest samples), not by single samples.
    end = series[-1][0]
    second = [r for t, r in series if 60 <= t < 120] or [r for _, r in series]
    final = [r for t, r in series if t >= end - 60]
    growth = 100 * (statistics.median(final) / statistics.median(second) - 1)
    print(f"minute 2: median {statistics.median(second):.0f} MB (lowest {min(second):.0f}); last minute: "
          f"median {statistics.median(final):.0f} MB (lowest {min(final):.0f}); growth {growth:+.1f}% "
          f"(target <= 10%); peak {max(r for _, r in series):.0f} MB; "
          f"30 s after the sessions closed {results['after_close']:.0f} MB")
    print("actions answered:", ", ".join(f"{k} {v}" for k, v in sorted(results["done"].items())),
          f"· samples left {remaining} · deletes whose sample had moved off the page {results['raced']}")
    print(f"errors: {len(results['errors'])} (target 0)")
    for error in sorted(set(results["errors"]))[:10]:
        print(f"  {error}")
    flagged = [line for line in server_log
               if any(word in line for word in ("Traceback", "Warning", "WARNING", "Error"))]
    print(f"server log: {len(server_log)} lines, {len(flagged)} with a warning or error")
    for line in flagged[:10]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
