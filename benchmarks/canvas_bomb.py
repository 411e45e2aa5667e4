"""Canvas bomb: what one websocket message with a huge canvas PNG does to the server's memory.

    python -m benchmarks.canvas_bomb [--size 9000] [--times 3]

A fresh server; headless Chromium records one real drawing (as benchmarks/load.py does);
then the drawing's PNG inside that frame is replaced by a size x size RGBA PNG (a few
hundred KB) and the frame is sent --times times in one session. Printed: the message size,
the server's RSS before, at its highest while the page answers (sampled every 50 ms), and
after, and what the page showed. Issue 8 measured 0.2 GB -> 3.06 GB on the old page, which
decoded any PNG the browser sent.
"""

import argparse
import asyncio
import base64
import json
import tempfile
import time
import zlib
from pathlib import Path

from digitrec.data import load_pendigits

from benchmarks.load import record_drawings, start_server
from benchmarks.soak import Session, rss_mb


def rgba_png(width: int, height: int) -> bytes:
    """A valid RGBA PNG of transparent pixels; its bytes are tiny, its pixels are not."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 4 * width)
    rows = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def with_png(frame: bytes, png: bytes) -> bytes:
    """The recorded frame with the canvas drawing's data URL replaced by `png`."""
    from streamlit.proto.BackMsg_pb2 import BackMsg

    message = BackMsg()
    message.ParseFromString(frame)
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    replaced = 0
    for widget in message.rerun_script.widget_states.widgets:
        if widget.WhichOneof("value") == "json_value" and "data:image/png;base64," in widget.json_value:
            value = json.loads(widget.json_value)
            replaced += replace_data_url(value, url)
            widget.json_value = json.dumps(value)
    if not replaced:
        raise RuntimeError("no canvas drawing found in the recorded frame")
    return message.SerializeToString()


def replace_data_url(value, url) -> int:
    count = 0
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in list(items):
        if isinstance(item, str) and item.startswith("data:image/png;base64,"):
            value[key] = url
            count += 1
        elif isinstance(item, (dict, list)):
            count += replace_data_url(item, url)
    return count


async def send_bombs(port, pid, opening, frame, times):
    import websockets

    peak = [rss_mb(pid)]
    stop = asyncio.Event()

    async def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb(pid))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    visitor = Session(port, opening, [], [], None, {"done": {}, "errors": []})
    shown = []
    async with websockets.connect(f"ws://127.0.0.1:{port}/_stcore/stream", subprotocols=["streamlit"],
                                  max_size=None) as socket_:
        await visitor.run(socket_, visitor.back_msg())
        for _ in range(times):
            started = time.monotonic()
            page = await visitor.run(socket_, frame)
            shown.append((time.monotonic() - started, page))
    stop.set()
    await sampler
    return peak[0], shown


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=9000)
    parser.add_argument("--times", type=int, default=3)
    args = parser.parse_args()
    digit = next(d for d in load_pendigits() if d.writer == 21 and d.label == 0)
    png = rgba_png(args.size, args.size)
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        server, port = start_server(workdir, workdir / "timing.log")
        try:
            opening, drawings = record_drawings(port, [digit])
            frame = with_png(drawings[0][0], png)
            time.sleep(2)
            before = rss_mb(server.pid)
            peak, shown = asyncio.run(send_bombs(port, server.pid, opening, frame, args.times))
            time.sleep(2)
            after = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(10)
    print(f"{args.size}x{args.size} RGBA PNG: {len(png) / 1024:.0f} KB, message {len(frame) / 1024:.0f} KB, "
          f"sent {args.times} times")
    print(f"server RSS: before {before:.0f} MB, highest while answering {peak:.0f} MB, after {after:.0f} MB")
    for seconds, page in shown:
        messages = [f"{kind}: {body[:120]}" for kind, body in page.alerts] + page.exceptions
        print(f"  answered in {seconds * 1000:.0f} ms: {' | '.join(messages) or 'no message'}")


if __name__ == "__main__":
    main()
