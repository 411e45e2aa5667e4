"""Pictures and Altair charts the pages render (no Streamlit here: pages only lay them out)."""

from __future__ import annotations

import copy
import io
from functools import lru_cache

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image

HIGHLIGHT = "#4f46e5"
MUTED = "#c7d2fe"


def model_input_image(model_input: np.ndarray, scale: int = 8) -> Image.Image:
    """The 28x28 model input enlarged with nearest-neighbour pixels: 'what the model sees'."""
    pixels = (np.clip(np.asarray(model_input, np.float32), 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(pixels, mode="L")
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST)


def png_bytes(image) -> bytes:
    """Encode an array or PIL image as PNG bytes (to store or download a drawing)."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit and float images: scale to 8 bits instead of clipping to white.
        pixels = np.asarray(image, np.float64)
        image = Image.fromarray((pixels / max(pixels.max(), 1.0) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _probability_rows(probabilities, digit) -> list[dict]:
    return [{"digit": str(d), "probability": float(p), "predicted": d == digit}
            for d, p in enumerate(probabilities)]


def probability_chart(prediction, height: int = 220) -> alt.Chart:
    """Bars of all ten probabilities, the predicted digit highlighted, with tooltips."""
    return probability_chart_from_values(prediction.probabilities, prediction.digit, height)


def probability_chart_from_values(probabilities, digit, height: int = 220) -> alt.Chart:
    """The probability bar chart for ten values, `digit`'s bar highlighted."""
    table = pd.DataFrame(_probability_rows(probabilities, digit))
    return (
        alt.Chart(table, height=height)
        .mark_bar()
        .encode(
            x=alt.X("digit:N", sort=None, axis=alt.Axis(labelAngle=0, title="digit")),
            y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
            color=alt.condition("datum.predicted", alt.value(HIGHLIGHT), alt.value(MUTED)),
            tooltip=[alt.Tooltip("digit:N"), alt.Tooltip("probability:Q", format=".2%")],
        )
    )


@lru_cache(maxsize=8)
def _probability_spec_template(height: int) -> dict:
    # Building and validating an Altair chart takes ~10 ms; the shape never changes, so the
    # chart is made and validated once and each prediction only fills in its ten values.
    spec = probability_chart_from_values([0.1] * 10, 0, height).to_dict(validate=True)
    spec.pop("datasets", None)
    return spec


def probability_chart_spec(prediction, height: int = 220) -> dict:
    """The Altair probability chart as a Vega-Lite spec with this prediction's values inline."""
    spec = copy.deepcopy(_probability_spec_template(height))
    spec["data"] = {"values": _probability_rows(prediction.probabilities, prediction.digit)}
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


def training_curves(epochs: list[dict]) -> alt.Chart:
    """Loss and accuracy per epoch, training vs validation, as two line charts side by side."""
    rows = []
    for entry in epochs:
        for metric in ("loss", "accuracy"):
            for split, key in (("train", metric), ("validation", f"val_{metric}")):
                if key in entry:
                    rows.append({"epoch": entry["epoch"], "metric": metric, "split": split,
                                 "value": entry[key]})
    table = pd.DataFrame(rows, columns=["epoch", "metric", "split", "value"])
    base = alt.Chart(table).mark_line(point=True).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", scale=alt.Scale(zero=False)),
        color=alt.Color("split:N", scale=alt.Scale(range=[HIGHLIGHT, "#f59e0b"]),
                        legend=alt.Legend(orient="bottom", title=None)),
        tooltip=["epoch:Q", "split:N", alt.Tooltip("value:Q", format=".4f")],
    )
    loss = base.transform_filter(alt.datum.metric == "loss").properties(title="loss", height=220)
    accuracy = base.transform_filter(alt.datum.metric == "accuracy").properties(
        title="accuracy", height=220)
    return alt.hconcat(loss, accuracy)


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
