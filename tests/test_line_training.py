"""Training the line model on numbers made up as people write them (digitrec.line_training)."""

import numpy as np
import pytest

from digitrec import Recognizer, registry
from digitrec.line_training import TOUCH_SHARE, TRAIN_WRITERS, _layout, synthetic_numbers
from digitrec.lines import CLASSES, FRAMES, LINE_FILE, LINE_HEIGHT, LINE_WIDTH, MAX_DIGITS, line_input


@pytest.fixture(scope="module")
def numbers(pen_digits, mnist):
    pen = [d for d in pen_digits if d.writer in TRAIN_WRITERS][::10]
    return synthetic_numbers(pen, mnist.x_train[:2000], mnist.y_train[:2000], 120, seed=3)


def test_numbers_are_line_inputs_with_their_digits(numbers):
    x, y, lengths = numbers
    assert x.shape == (120, LINE_HEIGHT, LINE_WIDTH) and x.dtype == np.uint8
    assert lengths.min() >= 1 and lengths.max() <= MAX_DIGITS and len(set(lengths)) > 4
    for row, length in zip(y, lengths):
        assert (row[:length] < 10).all() and (row[length:] == 0).all()
    # every number has ink, left-aligned and scaled like a served line (line_input's output)
    assert (x.reshape(120, -1).max(axis=1) > 200).all()
    assert (x[:, :, :2] == 0).all()


def test_the_training_writers_are_not_the_tuning_or_test_writers():
    assert max(TRAIN_WRITERS) < 18


def test_about_the_intended_share_of_neighbours_touch_or_overlap():
    rng = np.random.default_rng(0)
    overlapping = pairs = 0
    for _ in range(400):
        widths = list(rng.uniform(20, 40, 5))
        lefts = _layout(widths, [50.0] * 5, rng)
        for index in range(1, 5):
            pairs += 1
            overlapping += lefts[index] <= lefts[index - 1] + widths[index - 1]
    assert abs(overlapping / pairs - TOUCH_SHARE) < 0.05


def test_a_trained_line_model_is_served_from_its_folder(companion_model):
    card = registry.read_card(companion_model)
    assert card["companions"]["line"]["file"] == LINE_FILE
    assert card["files"][LINE_FILE] == (companion_model / LINE_FILE).stat().st_size
    reader = Recognizer.load(companion_model)
    assert reader.reads_lines
    ink = np.zeros((100, 300), np.float32)
    ink[20:80, 30:60] = 1.0
    ink[20:80, 100:110] = 1.0
    probabilities = reader.line_probabilities(np.stack([line_input(ink).pixels] * 3))
    assert probabilities.shape == (3, FRAMES, CLASSES)
    assert np.allclose(probabilities.sum(axis=2), 1.0, atol=1e-4)
    assert np.allclose(probabilities[0], probabilities[2])


def test_a_folder_without_a_line_model_says_so(tiny_model):
    from digitrec.errors import ModelError

    reader = Recognizer.load(tiny_model)
    assert not reader.reads_lines
    with pytest.raises(ModelError, match="no line model"):
        reader.line_probabilities(np.zeros((1, LINE_HEIGHT, LINE_WIDTH), np.float32))


def test_a_line_model_of_another_shape_is_refused_when_loading(companion_model, tmp_path):
    import shutil

    from digitrec.errors import ModelError

    folder = tmp_path / "wrong-line"
    shutil.copytree(companion_model, folder)
    (folder / LINE_FILE).write_bytes((folder / "gate.tflite").read_bytes())  # a 28x28 model
    with pytest.raises(ModelError, match="line.tflite reads inputs of shape"):
        Recognizer.load(folder)
