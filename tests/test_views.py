"""Views: the visitor's time zone and local times, the pictures (model input, explanation,
Samples gallery, stored PNGs) and the charts the pages show."""

import io
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from PIL import Image

from digitrec.views import gallery_image, local_time, model_input_image, png_bytes, visitor_timezone


def stroke_drawing(size: int = 280) -> np.ndarray:
    """A canvas-like RGBA drawing: dark ink on a transparent background (a thick vertical bar)."""
    drawing = np.zeros((size, size, 4), np.uint8)
    drawing[40:240, 120:160] = (17, 17, 17, 255)
    return drawing


def model_input() -> np.ndarray:
    image = np.zeros((28, 28), np.float32)
    image[4:24, 12:16] = 1.0
    return image


# ---- time zones ---------------------------------------------------------------------------

def test_visitor_timezone_from_the_browser_zone_name():
    zone, name = visitor_timezone("Europe/Berlin", -60)
    assert zone == ZoneInfo("Europe/Berlin") and name == "Europe/Berlin"


@pytest.mark.parametrize("offset, name, east", [(-330, "UTC+05:30", 330), (300, "UTC-05:00", -300),
                                                (0, "UTC", 0)])
def test_visitor_timezone_falls_back_to_the_offset(offset, name, east):
    # JavaScript's offset counts minutes *behind* UTC: India (UTC+05:30) reports -330.
    zone, label = visitor_timezone("Not/AZone", offset)
    assert label == name
    assert zone.utcoffset(None) == timedelta(minutes=east)


@pytest.mark.parametrize("name, offset", [
    (None, None), ("../../etc/passwd", None), ("/etc/localtime", None), ("", None),
    ("Europe/" + "x" * 200, None), ("Europe/Berlin\x00", None), (42, None),
    (None, True), (None, 10**9), (None, -10**9), (None, 1.5), (None, "60"),
])
def test_visitor_timezone_is_utc_for_values_that_make_no_sense(name, offset):
    assert visitor_timezone(name, offset) == (UTC, "UTC")


def test_local_time_follows_summer_time():
    berlin = ZoneInfo("Europe/Berlin")
    assert local_time("2026-07-01T12:00:00.123456+00:00", berlin) == "2026-07-01 14:00"
    assert local_time("2026-01-15T12:00:00.123456+00:00", berlin) == "2026-01-15 13:00"


def test_local_time_crosses_the_date_line():
    assert local_time("2026-11-26T20:45:00+00:00", ZoneInfo("Asia/Kolkata")) == "2026-11-27 02:15"
    assert local_time("2026-11-26T02:00:00+00:00", ZoneInfo("America/New_York")) == "2026-11-25 21:00"


def test_local_time_reads_a_naive_timestamp_as_utc_and_keeps_an_unreadable_one():
    assert local_time("2026-11-26T06:30:00", ZoneInfo("Asia/Tokyo")) == "2026-11-26 15:30"
    assert local_time("yesterday, around noon", UTC) == "yesterday, aroun"  # its first 16 characters


# ---- the gallery picture ------------------------------------------------------------------

def test_gallery_image_shows_the_drawing_beside_the_model_input():
    picture = gallery_image(model_input(), png_bytes(stroke_drawing()), height=84)
    seen = np.asarray(model_input_image(model_input(), scale=3).convert("RGB"))
    assert picture.mode == "RGB" and picture.height == 84
    assert picture.width > 1.8 * picture.height  # two pictures side by side
    pixels = np.asarray(picture)
    # Right: exactly what the model sees.
    np.testing.assert_array_equal(pixels[:, -84:], seen)
    # Left: the drawing on white paper (its transparent background is not black), with its ink.
    drawn = pixels[:, :84].min(axis=2)
    assert (drawn > 240).mean() > 0.6, "the drawing's background is not white"
    assert (drawn < 60).mean() > 0.05, "the drawing's ink is missing"
    # The bar is in the middle of the drawing: ink there, none at the left edge.
    assert drawn[42, 42] < 60 and drawn[42, 8] > 240


def test_gallery_image_fits_a_wide_number_drawing_into_the_height():
    wide = np.zeros((280, 700, 4), np.uint8)
    wide[100:180, 50:650] = (0, 0, 0, 255)
    picture = gallery_image(model_input(), png_bytes(wide), height=84)
    assert picture.height == 84
    assert picture.width <= 84 * 5 // 2 + 6 + 84 + 2


@pytest.mark.parametrize("drawing", [None, b"", b"\x89PNG\r\n\x1a\n damaged", b"not a picture"])
def test_gallery_image_without_a_readable_drawing_is_the_model_input(drawing):
    picture = gallery_image(model_input(), drawing, height=84)
    expected = model_input_image(model_input(), scale=3).convert("RGB")
    assert picture.size == expected.size
    np.testing.assert_array_equal(np.asarray(picture), np.asarray(expected))


def test_gallery_image_of_a_16_bit_drawing_keeps_its_ink():
    grey = np.full((280, 280), 65535, np.uint16)
    grey[40:240, 120:160] = 0
    picture = np.asarray(gallery_image(model_input(), png_bytes(Image.fromarray(grey)), height=84))
    drawn = picture[:, :84].min(axis=2)
    assert drawn[42, 42] < 60 and drawn[42, 8] > 240


def test_adapted_prediction_chart_shows_the_shared_models_answer_too():
    from types import SimpleNamespace

    from digitrec.views import probability_chart_spec

    shared = [0.02] * 4 + [0.7, 0.22] + [0.02] * 4
    adapted = [0.01] * 4 + [0.2, 0.75] + [0.01] * 4
    spec = probability_chart_spec(SimpleNamespace(probabilities=adapted, digit=5, base_probabilities=shared))
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "tick"]
    rows = spec["data"]["values"]
    assert [r["shared model"] for r in rows] == pytest.approx(shared)
    assert [r["probability"] for r in rows] == pytest.approx(adapted)
    plain = probability_chart_spec(SimpleNamespace(probabilities=adapted, digit=5))
    assert "layer" not in plain and "shared model" not in plain["data"]["values"][0]


def test_reliability_chart_plots_every_filled_bin_against_the_diagonal():
    import numpy as np

    from digitrec.calibrate import reliability
    from digitrec.views import reliability_chart

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(10) * 0.3, 400)
    rows = reliability(probabilities, probabilities.argmax(1))
    spec = reliability_chart(rows, "MNIST test").to_dict(validate=True)
    bars = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "bar")
    assert bars["encoding"]["y"]["field"] == "accuracy"
    assert sum(1 for row in rows if row["count"]) in {len(v) for v in spec["datasets"].values()}


def test_time_left_reads_as_people_say_it():
    from digitrec.views import time_left_text

    assert time_left_text(None) == "estimating time left…"
    assert time_left_text(4) == "a few seconds left"
    assert time_left_text(47) == "about 45 s left"
    assert time_left_text(59.9) == "about 1 min left"  # not "about 60 s"
    assert time_left_text(80) == "about 1 min 20 s left"
    assert time_left_text(3599) == "about 1 h left"
    assert time_left_text(5000) == "about 1 h 23 min left"


def test_training_curves_move_within_an_epoch():
    from digitrec.events import BatchProgress, EpochEnd
    from digitrec.views import training_curves

    curve = [BatchProgress(1, 2, batch, 100, 1.0, None, 2.0 / batch, 0.5 + batch / 250)
             for batch in (1, 25, 50, 75, 100)]
    loss, accuracy = training_curves(curve, [EpochEnd(1, 2, 0.4, 0.8, 0.35, 0.85)])
    for chart, metric in ((loss, "loss"), (accuracy, "accuracy")):
        spec = chart.to_dict()
        rows = next(iter(spec["datasets"].values()))
        training = [row["epoch"] for row in rows if row["split"] == "training"]
        assert training == [0.01, 0.25, 0.5, 0.75, 1.0]  # five points before the first epoch's end
        assert [row["epoch"] for row in rows if row["split"] == "validation"] == [1.0]
        assert {row["metric"] for row in rows} == {metric}
        assert spec["width"] == "container"  # fits its column


def test_probability_chart_parts_keep_one_spec_and_change_only_the_table():
    from types import SimpleNamespace

    from digitrec.views import probability_chart_parts

    first = SimpleNamespace(probabilities=tuple([0.9] + [0.1 / 9] * 9), digit=0)
    second = SimpleNamespace(probabilities=tuple([0.1 / 9] * 8 + [0.9, 0.1 / 9]), digit=8)
    (table_1, spec_1), (table_2, spec_2) = probability_chart_parts(first), probability_chart_parts(second)
    assert spec_1 == spec_2 and "data" not in spec_1, "the spec changes with the prediction"
    assert spec_1 is not spec_2  # each call gets its own copy (Streamlit may add to it)
    assert list(table_2["digit"]) == [str(d) for d in range(10)]
    assert table_2["probability"].tolist() == list(second.probabilities)
    assert table_2["predicted"].tolist() == [d == 8 for d in range(10)]
    assert table_1["predicted"].tolist() == [d == 0 for d in range(10)]


def test_percent_never_shows_a_false_certainty():
    from digitrec.views import percent

    assert [percent(p) for p in (0.99999, 0.9994, 0.5, 0.0004, 0.0)] == \
        ["> 99.9%", "99.9%", "50.0%", "< 0.1%", "< 0.1%"]


def test_model_input_image_is_the_input_enlarged_pixel_for_pixel():
    picture = model_input_image(model_input() * 1.5 - 0.25, scale=4)  # out of range: clipped
    assert picture.mode == "L" and picture.size == (112, 112)
    pixels = np.asarray(picture)
    expected = (np.clip(model_input() * 1.5 - 0.25, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(pixels[::4, ::4], expected)
    np.testing.assert_array_equal(pixels[3::4, 3::4], expected)  # nearest neighbour: no blur


def test_a_digit_takes_its_article():
    from digitrec.views import a_digit

    assert [a_digit(d) for d in (0, 1, 7, 8, 9)] == ["a 0", "a 1", "a 7", "an 8", "a 9"]


def test_readers_note_names_both_readings_only_where_they_differ():
    from digitrec.inference import Readers
    from digitrec.views import readers_note

    assert readers_note(Readers(8, 0.62, 8, 0.9)) is None
    assert readers_note(None) is None
    assert readers_note(Readers(7, 0.9931, 1, 0.99995)) == (
        "Your strokes read as a 1 (> 99.9%), the picture as a 7 (99.3%); the answer weighs both.")
    assert readers_note(Readers(8, 0.5, 3, 0.6)).startswith(
        "Your strokes read as a 3 (60.0%), the picture as an 8")


def test_explanation_colours_ink_by_what_it_argued_for():
    from digitrec.views import ANSWER_COLOUR, PAPER_COLOUR, RUNNER_UP_COLOUR, explanation_image

    evidence = np.zeros((28, 28), np.float32)
    evidence[4:14, 12:16] = 2.0  # the top of the bar drove the answer
    evidence[14:24, 12:16] = -2.0  # its bottom pulled towards the runner-up
    pixels = np.asarray(explanation_image(model_input(), evidence, scale=2))
    assert pixels.shape == (56, 56, 3)
    assert tuple(pixels[2 * 6, 2 * 13]) == ANSWER_COLOUR
    assert tuple(pixels[2 * 20, 2 * 13]) == RUNNER_UP_COLOUR
    # Its paper is not the page's white, so the whole 28x28 square shows beside the model input.
    assert tuple(pixels[2 * 20, 2 * 2]) == PAPER_COLOUR != (255, 255, 255)
    grey = np.asarray(explanation_image(model_input(), np.zeros((28, 28)), scale=1))
    assert tuple(grey[6, 13]) == (150, 150, 150)  # ink that did not matter is grey


def test_png_bytes_scales_a_16_bit_image_down_instead_of_clipping_it():
    deep = np.zeros((20, 20), np.uint16)
    deep[5:15, 5:15] = 30000  # mid-grey ink in 16 bits: clipped to 8 bits it would be white
    stored = np.asarray(Image.open(io.BytesIO(png_bytes(Image.fromarray(deep)))))
    assert stored.dtype == np.uint8 and stored[10, 10] == 255 and stored[0, 0] == 0


def test_confusion_chart_holds_every_cell_of_the_matrix():
    from digitrec.views import confusion_chart

    matrix = np.arange(100).reshape(10, 10)
    chart = confusion_chart(matrix.tolist())
    table = chart.data  # the heatmap and its numbers share it
    assert len(table) == 100 and len(chart.layer) == 2
    for row in table.itertuples():
        assert row.count == matrix[int(row.true), int(row.predicted)]


def test_every_digit_is_labelled_under_a_narrow_chart():
    """Five digits side by side make each chart narrow: Vega-Lite then hides every other axis
    label by default, and a bar at 9 stood over no label. All ten stay labelled."""
    from digitrec.inference import prediction_from
    from digitrec.views import probability_chart_parts

    _, spec = probability_chart_parts(prediction_from(np.zeros((28, 28), np.float32), np.full(10, 0.1)), 120)
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("field") == "digit" and "axis" in node:
                found.append(node["axis"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    assert found and all(axis.get("labelOverlap") is False for axis in found)


def test_a_numbers_narrow_charts_give_their_width_to_the_ten_digit_labels():
    """Six digits side by side: the probability axis' labels took a third of each chart and the
    ten digit labels ran together (1280 px window). Compact charts keep only its grid lines."""
    from digitrec.inference import prediction_from
    from digitrec.views import probability_chart_parts

    prediction = prediction_from(np.zeros((28, 28), np.float32), np.full(10, 0.1))
    _, compact = probability_chart_parts(prediction, 90, compact=True)
    _, full = probability_chart_parts(prediction, 220)
    assert compact["encoding"]["y"]["axis"]["labels"] is False
    assert compact["encoding"]["y"]["axis"]["values"] == [0, 0.5, 1]  # the grid stays
    assert full["encoding"]["y"]["axis"].get("labels", True) is True


def test_the_loss_axis_has_readable_ticks_over_the_losses_range():
    """The log scale's own ticks over a loss of 0.5-3 were 2 and 3 alone: the validation loss at
    the bottom could not be read."""
    from digitrec.events import BatchProgress, EpochEnd
    from digitrec.views import log_ticks, training_curves

    curve = [BatchProgress(1, 1, batch, 5, 1.0, None, 3.1 - batch * 0.4, 0.3) for batch in range(1, 6)]
    loss, _ = training_curves(curve, [EpochEnd(1, 1, 1.2, 0.4, 0.52, 0.82)])
    values = loss.to_dict()["layer"][0]["encoding"]["y"]["axis"]["values"]
    assert values == [0.7, 1.0, 1.5, 2.0]  # losses 0.52 (validation) to 2.7
    # uneven ticks are the scale's, and the axis says so (they looked like a mistake)
    assert loss.to_dict()["layer"][0]["encoding"]["y"]["title"] == "loss (log scale)"
    assert log_ticks([0.53, 0.6]) == [0.53, 0.6]  # a narrow range: its ends
    assert log_ticks([0.011, 2.3]) == [0.015, 0.05, 0.15, 0.7, 2.0]  # at most five, spread
    assert log_ticks([]) == []
