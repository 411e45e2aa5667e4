"""Pictures and Altair charts the pages render (no Streamlit here: pages only lay them out)."""

from __future__ import annotations

import copy
import io
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from digitrec.errors import DigitrecError
from digitrec.preprocess import HIGH_DEPTH_MODES, MODEL_SHAPE
from digitrec.upload import decode_upload, eight_bit

HIGHLIGHT = "#4f46e5"
SHARED_TICK = "#f59e0b"  # the shared model's answer, on a chart adapted to a person
MUTED = "#c7d2fe"
VALIDATION = "#f59e0b"


def model_input_image(model_input: np.ndarray, scale: int = 8) -> Image.Image:
    """The 28x28 model input enlarged with nearest-neighbour pixels: 'what the model sees'."""
    pixels = (np.clip(np.asarray(model_input, np.float32), 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L")
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


ANSWER_COLOUR = (79, 70, 229)  # HIGHLIGHT: parts that drove the answer
RUNNER_UP_COLOUR = (245, 158, 11)  # amber: parts that pulled towards the runner-up
# The explanation's paper: light grey, not white, so the map shows its whole 28x28 square on the
# page's white beside the black model input (on white paper only its ink showed, and it looked
# like a small picture of its own).
PAPER_COLOUR = (228, 228, 234)


def percent(probability: float) -> str:
    """A probability as people read it: one decimal, never a false "100.0%" or "0.0%"."""
    if probability >= 0.9995:
        return "> 99.9%"
    if probability < 0.0005:
        return "< 0.1%"
    return f"{probability:.1%}"


def a_digit(digit) -> str:
    """The digit with its English article: "a 7", "an 8"."""
    return f"{'an' if str(digit) in ('8', '11', '18') else 'a'} {digit}"


def readers_note(readers) -> str | None:
    """Where the pen path and the picture read different digits (an `inference.Readers`), both
    readings in words; None where they agree or there were no strokes. The answer is the product
    of the two, so it can be either reader's (or, rarely, a third digit both gave some weight)."""
    if readers is None or not readers.disagree:
        return None
    return (f"Your strokes read as {a_digit(readers.strokes)} ({percent(readers.strokes_probability)}), "
            f"the picture as {a_digit(readers.picture)} ({percent(readers.picture_probability)}); "
            "the answer weighs both.")


def explanation_image(model_input: np.ndarray, evidence: np.ndarray, scale: int = 8) -> Image.Image:
    """The 28x28 input enlarged on PAPER_COLOUR, each inked pixel coloured by what it argued for.

    Ink that drove the answer turns indigo, ink that pulled towards the runner-up amber, the
    stronger the more it mattered (relative to the strongest pixel); ink that did not matter
    stays grey. `evidence` is an Explanation's: > 0 for the answer, < 0 for the runner-up.
    """
    ink = np.clip(np.asarray(model_input, np.float32).reshape(MODEL_SHAPE), 0, 1)[..., None]
    evidence = np.asarray(evidence, np.float32).reshape(MODEL_SHAPE)
    strength = np.clip(np.abs(evidence) / max(float(np.abs(evidence).max()), 1e-6), 0, 1)[..., None]
    colour = np.where(evidence[..., None] >= 0, np.array(ANSWER_COLOUR, np.float32),
                      np.array(RUNNER_UP_COLOUR, np.float32))
    grey = np.full(3, 150.0, np.float32)
    tint = grey + (colour - grey) * strength ** 0.5  # square root: weak evidence still shows
    pixels = (np.array(PAPER_COLOUR, np.float32) * (1 - ink) + tint * ink).astype(np.uint8)  # tinted ink
    image = Image.fromarray(pixels, mode="RGB")
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def png_bytes(image) -> bytes:
    """Encode an array or PIL image as PNG bytes (to store or download a drawing)."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    if image.mode in HIGH_DEPTH_MODES:
        image = eight_bit(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# The browser's IANA zone name and its JavaScript offset are visitor-sent values: bounded here.
TIMEZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+){0,2}")
MAX_TIMEZONE_NAME = 64
MAX_OFFSET_MINUTES = 14 * 60  # real offsets lie between UTC-12 and UTC+14
DRAWING_BACKGROUND = (255, 255, 255)
GALLERY_GAP = 6  # px between the drawing and the model input in a gallery picture


def visitor_timezone(name=None, offset_minutes=None) -> tuple[tzinfo, str]:
    """The visitor's time zone and a label for it, from what the browser reports.

    `name` is the browser's IANA zone (st.context.timezone, e.g. "Europe/Berlin"); when it is
    unknown here, `offset_minutes` (st.context.timezone_offset: JavaScript's offset, minutes
    *behind* UTC) gives a fixed offset; with neither, or values that make no sense, UTC.
    """
    if (isinstance(name, str) and len(name) <= MAX_TIMEZONE_NAME
            and TIMEZONE_NAME.fullmatch(name)):
        try:
            return ZoneInfo(name), name
        except (KeyError, ValueError, OSError):  # no such zone on this machine
            pass
    if (isinstance(offset_minutes, int) and not isinstance(offset_minutes, bool)
            and abs(offset_minutes) <= MAX_OFFSET_MINUTES):
        east = -offset_minutes
        if east == 0:
            return UTC, "UTC"
        hours, minutes = divmod(abs(east), 60)
        return timezone(timedelta(minutes=east)), f"UTC{'+' if east > 0 else '-'}{hours:02d}:{minutes:02d}"
    return UTC, "UTC"


def local_time(created: str, zone: tzinfo) -> str:
    """A stored timestamp (ISO 8601, UTC) as "YYYY-MM-DD HH:MM" in `zone`.

    A timestamp without an offset is read as UTC; one that cannot be read is shown as stored.
    """
    try:
        moment = datetime.fromisoformat(created)
    except (TypeError, ValueError):
        return str(created)[:16]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def drawing_image(drawing_png: bytes | None, height: int, max_width: int) -> Image.Image | None:
    """A saved drawing on white, fitted into max_width x height; None if none or unreadable."""
    if not drawing_png:
        return None
    try:
        image = decode_upload(drawing_png)  # bounded: size and pixel count checked first
    except DigitrecError:
        return None
    if image.mode in HIGH_DEPTH_MODES:
        image = eight_bit(image)
    image = ImageOps.contain(image.convert("RGBA"), (max_width, height), Image.LANCZOS)
    paper = Image.new("RGBA", image.size, DRAWING_BACKGROUND + (255,))
    return Image.alpha_composite(paper, image).convert("RGB")


def gallery_image(model_input: np.ndarray, drawing_png: bytes | None, height: int = 84) -> Image.Image:
    """One gallery picture: the drawing as it was saved (left, framed, on white) beside the
    28x28 model input it became (right). Without a readable drawing, only the model input."""
    scale = max(1, height // model_input.shape[0])
    seen = model_input_image(model_input, scale=scale).convert("RGB")
    drawn = drawing_image(drawing_png, seen.height - 2, max_width=seen.height * 5 // 2)
    if drawn is None:
        return seen
    framed = ImageOps.expand(drawn, border=1, fill=(200, 200, 200))
    picture = Image.new("RGB", (framed.width + GALLERY_GAP + seen.width, seen.height), DRAWING_BACKGROUND)
    picture.paste(framed, (0, (seen.height - framed.height) // 2))
    picture.paste(seen, (framed.width + GALLERY_GAP, 0))
    return picture


def _probability_rows(probabilities, digit, shared=None) -> list[dict]:
    rows = [{"digit": str(d), "probability": float(p), "predicted": d == digit}
            for d, p in enumerate(probabilities)]
    if shared is not None:  # what the shared model said before personal adaptation
        for row, value in zip(rows, shared):
            row["shared model"] = float(value)
    return rows


def probability_chart(prediction, height: int = 220) -> alt.Chart:
    """Bars of all ten probabilities, the predicted digit highlighted, with tooltips."""
    return probability_chart_from_values(prediction.probabilities, prediction.digit, height)


def probability_chart_from_values(probabilities, digit, height: int = 220, shared=None,
                                  compact: bool = False) -> alt.Chart:
    """The probability bar chart for ten values, `digit`'s bar highlighted.

    With `shared` (the shared model's probabilities before personal adaptation), a tick on each
    bar shows what the shared model said, so the chart shows what the adaptation changed.
    `compact` (a number's digits, several side by side): no axis titles and the probability axis
    only as grid lines at 0, 50 and 100% (its labels took a third of a 6-digit number's column,
    and the ten digit labels ran together), so the bars and their labels keep the column's width.
    """
    table = pd.DataFrame(_probability_rows(probabilities, digit, shared))
    bars = _probability_bars(table, height, compact)
    if shared is None:
        return bars
    ticks = alt.Chart(table).mark_tick(color=SHARED_TICK, thickness=3).encode(
        x=alt.X("digit:N", sort=None),
        # The same axis title as the bars' (a layer's titles are joined: "probability, shared model").
        y=alt.Y("shared model:Q", title=None if compact else "probability"),
        tooltip=[alt.Tooltip("digit:N"), alt.Tooltip("probability:Q", format=".2%", title="adapted to you"),
                 alt.Tooltip("shared model:Q", format=".2%")],
    )
    return alt.layer(bars, ticks, height=height)


def _probability_bars(table: pd.DataFrame, height: int, compact: bool = False) -> alt.Chart:
    y_axis = (alt.Axis(title=None, values=[0, 0.5, 1], labels=False, ticks=False, domain=False) if compact
              else alt.Axis(format="%", title="probability"))
    return (
        alt.Chart(table, height=height)
        .mark_bar()
        .encode(
            x=alt.X("digit:N", sort=None, axis=alt.Axis(labelAngle=0, labelOverlap=False,
                                                         title=None if compact else "digit")),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=y_axis),
            color=alt.condition("datum.predicted", alt.value(HIGHLIGHT), alt.value(MUTED)),
            tooltip=[alt.Tooltip("digit:N"), alt.Tooltip("probability:Q", format=".2%")],
        )
    )


@lru_cache(maxsize=8)
def _probability_spec_template(height: int, adapted: bool = False, compact: bool = False) -> dict:
    # Building and validating an Altair chart takes ~10 ms; the shape never changes, so the
    # chart is made and validated once and each prediction only fills in its ten values.
    shared = [0.1] * 10 if adapted else None
    spec = probability_chart_from_values([0.1] * 10, 0, height, shared, compact).to_dict(validate=True)
    spec.pop("datasets", None)
    # `height` is the bars' height: the chart fits its column's width only (Streamlit's default
    # "fit" squeezes axes and titles into `height`, which left 25 px bars in Number mode).
    spec["autosize"] = {"type": "fit-x", "contains": "padding"}
    # Room above the plot for the shared model's tick at 100% (it was cut in half at the edge).
    spec["padding"] = {"top": 8, "bottom": 5, "left": 5, "right": 5}
    return spec


def probability_chart_parts(prediction, height: int = 220,
                            compact: bool = False) -> tuple[pd.DataFrame, dict]:
    """The probability chart as (table, spec without data): `st.vega_lite_chart(*parts)`.

    The spec is the same for every prediction and only the table changes, so at each stroke
    the browser swaps the data of the chart it already drew instead of compiling and drawing
    a new chart (a spec with the values inline, as probability_chart_spec's, differs at every
    stroke). A prediction adapted to a person's examples also shows the shared model's ticks.
    """
    shared = getattr(prediction, "base_probabilities", None)
    table = pd.DataFrame(_probability_rows(prediction.probabilities, prediction.digit, shared))
    spec = copy.deepcopy(_probability_spec_template(height, shared is not None, compact))
    spec.pop("data", None)  # Altair's reference to its dataset: Streamlit passes `table` instead
    return table, spec


def probability_chart_spec(prediction, height: int = 220) -> dict:
    """The Altair probability chart as a Vega-Lite spec with this prediction's values inline.

    A prediction adapted to a person's examples also shows the shared model's answer (ticks).
    """
    shared = getattr(prediction, "base_probabilities", None)
    spec = copy.deepcopy(_probability_spec_template(height, shared is not None))
    spec["data"] = {"values": _probability_rows(prediction.probabilities, prediction.digit, shared)}
    return spec


def label_count_chart(counts: dict) -> alt.Chart:
    """Bars of how many saved samples each digit has."""
    table = pd.DataFrame({"digit": [str(d) for d in range(10)],
                          "samples": [int(counts.get(d, 0)) for d in range(10)]})
    return alt.Chart(table, height=200).mark_bar(color=HIGHLIGHT).encode(
        x=alt.X("digit:N", sort=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("samples:Q", axis=alt.Axis(tickMinStep=1)),
        tooltip=["digit:N", "samples:Q"],
    )


def training_curves(curve, epochs, height: int = 220) -> tuple[alt.Chart, alt.Chart]:
    """Loss and accuracy charts of a training so far: training as it goes, validation per epoch.

    `curve`: BatchProgress events (loss and accuracy of the batches since the one before,
    placed at fractional epochs, so the lines move within an epoch); `epochs`: EpochEnd events
    (validation, one point at the end of each epoch). Two charts, for two columns: each
    stretches to its column's width. Training is drawn in HIGHLIGHT, validation in VALIDATION
    (no legend: the page says it once).
    """
    rows = []
    for point in curve:
        rows.append({"epoch": point.position, "metric": "loss", "split": "training", "value": point.loss})
        rows.append({"epoch": point.position, "metric": "accuracy", "split": "training",
                     "value": point.accuracy})
    for end in epochs:
        for metric, value in (("loss", end.val_loss), ("accuracy", end.val_accuracy)):
            if value is not None:
                rows.append({"epoch": float(end.epoch), "metric": metric, "split": "validation",
                             "value": value})
    table = pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])
    last = max([1.0] + [row["epoch"] for row in rows])
    total = max([1] + [point.epochs for point in curve] + [end.epochs for end in epochs])
    colour = alt.Color("split:N", scale=alt.Scale(domain=["training", "validation"],
                                                  range=[HIGHLIGHT, VALIDATION]),
                       legend=None)  # the page says which is which, once for both charts

    def chart(metric: str) -> alt.Chart:
        data = table[table["metric"] == metric]
        # Padding (px) keeps the first and last points inside the plot: the last epoch's
        # validation point was cut in half at the edge, and the lowest loss lay on the axis.
        base = alt.Chart(data, height=height).encode(
            x=alt.X("epoch:Q",
                    scale=alt.Scale(domain=[0, max(total, last)], nice=False, padding=CURVE_PADDING),
                    axis=alt.Axis(tickMinStep=1, format="d", title="epochs")),
            # Loss on a log scale: the first batches' loss would flatten everything after them.
            # Its ticks are chosen here: the log scale's own were 2 and 3 alone over 0.5-3. The title
            # says "log scale": unevenly spaced ticks looked like a mistake (a new user's check).
            y=alt.Y("value:Q", title="loss (log scale)" if metric == "loss" else metric,
                    scale=alt.Scale(type="log", nice=False, padding=CURVE_PADDING) if metric == "loss"
                    else alt.Scale(zero=False, padding=CURVE_PADDING),
                    axis=alt.Axis(format="%", tickCount=4, grid=True) if metric == "accuracy" else
                    alt.Axis(format=".2~f", values=log_ticks(data["value"]), grid=False)),
            color=colour,
            tooltip=[alt.Tooltip("epoch:Q", format=".2f"), "split:N",
                     alt.Tooltip("value:Q", format=".4f")],
        )
        training = base.transform_filter(alt.datum.split == "training").mark_line()
        validation = base.transform_filter(alt.datum.split == "validation").mark_line(point=True)
        return (training + validation).properties(width="container")

    return chart("loss"), chart("accuracy")


CURVE_PADDING = 8  # px inside each edge of a training curve's plot
LOG_TICK_STEPS = (1, 1.5, 2, 3, 5, 7)  # within each power of ten


def log_ticks(values, most: int = 5) -> list[float]:
    """Round values for a log axis over `values`' range: at most `most`, evenly thinned."""
    values = [float(v) for v in values if v is not None and np.isfinite(v) and v > 0]
    if not values:
        return []
    low, high = min(values), max(values)
    exponents = range(int(np.floor(np.log10(low))), int(np.floor(np.log10(high))) + 1)
    ticks = [round(step * 10.0 ** exponent, 12) for exponent in exponents for step in LOG_TICK_STEPS]
    ticks = [tick for tick in ticks if low <= tick <= high]
    if len(ticks) > most:
        ticks = [ticks[round(i * (len(ticks) - 1) / (most - 1))] for i in range(most)]
    if len(ticks) < 2:  # a narrow range: its ends, to two significant digits
        ticks = sorted({float(f"{low:.2g}"), *ticks, float(f"{high:.2g}")})
    return ticks


def time_left_text(seconds: float | None) -> str:
    """A training's time left as people say it: "about 1 min 20 s left", "estimating time left…"."""
    if seconds is None:
        return "estimating time left…"
    if seconds < 10:
        return "a few seconds left"
    rounded = int(round(seconds / 5) * 5) if seconds < 60 else int(round(seconds / 10) * 10)
    if rounded < 60:
        return f"about {rounded} s left"
    if rounded < 3600:
        minutes, rest = divmod(rounded, 60)
        return f"about {minutes} min {rest} s left" if rest else f"about {minutes} min left"
    hours, minutes = divmod(int(round(rounded / 60)), 60)
    return f"about {hours} h {minutes} min left" if minutes else f"about {hours} h left"


def reliability_chart(rows: list[dict], title: str = "", height: int = 220) -> alt.Chart:
    """A reliability diagram: per confidence bin, how often the answer was right (bars) against
    the confidence shown (the diagonal). `rows` as digitrec.calibrate.reliability returns them."""
    table = pd.DataFrame([{"bin": f"{row['low']:.0%}-{row['high']:.0%}",
                           "middle": (row["low"] + row["high"]) / 2, "accuracy": row["accuracy"],
                           "confidence": row["confidence"], "count": row["count"]}
                          for row in rows if row["count"]])
    bars = alt.Chart(table, height=height, title=title).mark_bar(color=HIGHLIGHT, size=14).encode(
        # padding 0: a bar mark otherwise pads the scale, and the axis ran from -10% to 110%
        x=alt.X("middle:Q", scale=alt.Scale(domain=[0, 1], padding=0),
                axis=alt.Axis(format="%", title="confidence shown")),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%", title="right")),
        tooltip=["bin:N", alt.Tooltip("confidence:Q", format=".1%", title="mean confidence"),
                 alt.Tooltip("accuracy:Q", format=".1%", title="right"), "count:Q"],
    )
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        color=SHARED_TICK, strokeDash=[4, 3]).encode(x="x:Q", y="y:Q")
    return alt.layer(diagonal, bars)


def confusion_chart(confusion) -> alt.Chart:
    """A heatmap of the confusion matrix (rows true digit, columns predicted digit)."""
    matrix = np.asarray(confusion)
    rows = [{"true": str(t), "predicted": str(p), "count": int(matrix[t, p])}
            for t in range(10) for p in range(10)]
    table = pd.DataFrame(rows)
    heat = alt.Chart(table, height=320, width=320).mark_rect().encode(
        x=alt.X("predicted:N", sort=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("true:N", sort=None),
        color=alt.Color("count:Q", scale=alt.Scale(type="symlog", scheme="purples")),
        tooltip=["true:N", "predicted:N", "count:Q"],
    )
    text = heat.mark_text(fontSize=10).encode(
        text="count:Q",
        color=alt.condition(alt.datum.count > matrix.max() / 3, alt.value("white"), alt.value("black")),
    )
    return heat + text
