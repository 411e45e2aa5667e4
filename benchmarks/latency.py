"""Serving speed on this machine: predict p50/p95 on 280x280 RGBA drawings, cold start, RSS.

    python -m benchmarks.latency [MODEL_FOLDER]

Targets (issue #2): <= 1 ms p50 per drawing, <= 1.5 s cold start, <= 250 MB peak RSS.
Cold start and RSS are measured in a fresh Python process: import digitrec, load the
model, read one drawing.
"""

import argparse
import json
import subprocess
import sys
import time

import numpy as np

COLD_START = """
import time, sys, json
started = time.perf_counter()
import numpy as np
from digitrec import Recognizer
recognizer = Recognizer.load(sys.argv[1] if len(sys.argv) > 1 else None)
canvas = np.zeros((280, 280, 4), np.uint8); canvas[60:220, 130:150, 3] = 255
recognizer.predict(canvas)
print(json.dumps({"cold_s": time.perf_counter() - started,
                  # VmHWM, not ru_maxrss: Linux carries the forking parent's peak over exec.
                  "rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024,
                  "tensorflow_imported": "tensorflow" in sys.modules}))
"""


def drawings(count=500):
    from digitrec import data

    rng = np.random.default_rng(0)
    digits = data.load_pendigits()
    return [data.draw_pen_digit(digits[i], rng) for i in rng.choice(len(digits), count)]


def main(folder=None):
    from digitrec import Recognizer

    recognizer = Recognizer.load(folder)
    images = drawings()
    for image in images[:50]:
        recognizer.predict(image)  # warm up
    times = []
    for image in images:
        started = time.perf_counter()
        recognizer.predict(image)
        times.append((time.perf_counter() - started) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    print(f"model {recognizer.version} ({recognizer.backend}), {len(images)} canvas drawings 280x280 RGBA")
    print(f"predict per drawing: p50 {p50:.2f} ms, p95 {p95:.2f} ms   (target p50 <= 1 ms)")
    batch = images[:256]
    started = time.perf_counter()
    recognizer.predict_many(batch)
    per_drawing = (time.perf_counter() - started) * 1000 / len(batch)
    print(f"predict_many of {len(batch)}: {per_drawing:.2f} ms per drawing")
    colds = [json.loads(subprocess.run([sys.executable, "-c", COLD_START] + ([folder] if folder else []),
                                       capture_output=True, text=True, check=True).stdout)
             for _ in range(3)]
    cold = sorted(c["cold_s"] for c in colds)[1]
    rss = max(c["rss_mb"] for c in colds)
    print(f"cold start (import + load + first predict, median of 3): {cold:.2f} s   (target <= 1.5 s)")
    print(f"peak RSS of that process: {rss:.0f} MB   (target <= 250 MB); "
          f"tensorflow imported: {any(c['tensorflow_imported'] for c in colds)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", help="a model folder (default: the active model)")
    main(parser.parse_args().folder)
