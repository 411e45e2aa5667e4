"""Companion models (trajectory, not-a-digit gate) and the Recognizer's strokes path, on a tiny run."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from digitrec import Recognizer, companions, data, registry
from digitrec.companion_training import FOLDS, GATE_FILE, STROKES_FILE
from digitrec.data import place_strokes, render_strokes
from digitrec.evaluate import MNIST_TEST, read_evaluation
from digitrec.inference import GATE_HEAD_FILE, Status
from digitrec.lines import LINE_FILE
from digitrec.preprocess import preprocess


@pytest.fixture(scope="module")
def held_out(pen_digits):
    rng = np.random.default_rng(3)
    chosen = [d for d in pen_digits if d.writer >= 21]
    return [chosen[i] for i in rng.choice(len(chosen), 40, replace=False)]


def canvas_of(digit, brush, size=280):
    strokes = place_strokes(digit.strokes, size * 0.6, (size / 2, size / 2))
    return render_strokes(strokes, size, brush), strokes


def test_companions_are_written_with_cross_validated_figures(companion_model):
    card = registry.read_card(companion_model)
    assert (companion_model / STROKES_FILE).stat().st_size > 10_000
    assert (companion_model / GATE_FILE).stat().st_size > 10_000
    assert (companion_model / GATE_HEAD_FILE).is_file()  # the image model exports its features
    for name in (STROKES_FILE, GATE_FILE, GATE_HEAD_FILE, LINE_FILE):  # the sizes the Models page shows
        assert card["files"][name] == (companion_model / name).stat().st_size
    assert 0.0 <= card["calibration"]["gate_head_threshold"] <= 1.0
    calibration = card["calibration"]
    assert calibration["gate_head_threshold"] <= calibration["gate_head_small_threshold"] <= 1.0
    assert card["companions"]["gate_head"]["validation_digits_flagged"] <= 0.05
    assert 0.0 <= card["companions"]["gate_head"]["validation_small_non_digits_flagged"] <= 1.0
    folds = card["companions"]["strokes"]["cross_validation"]
    assert [tuple(f["writers"]) for f in folds] == [(low, high - 1) for low, high in FOLDS]
    assert all(0.0 <= f["accuracy"] <= 1.0 for f in folds)
    calibration = card["calibration"]
    assert 0.05 <= calibration["image_temperature"] <= 20
    assert 0.05 <= calibration["strokes_temperature"] <= 20
    assert 0.0 <= calibration["gate_threshold"] <= 1.0 and 0.0 <= calibration["strokes_threshold"] <= 1.0
    json.dumps(card)  # the card stays plain JSON


def test_pen_width_stops_mattering_when_strokes_are_given(companion_model, held_out):
    recognizer = Recognizer.load(companion_model)
    assert recognizer.reads_strokes
    for digit in held_out[:8]:
        readings = []
        for brush in (6, 12, 20, 30, 40):
            image, strokes = canvas_of(digit, brush)
            readings.append(recognizer.predict(image, strokes=strokes))
        assert all(r.used_strokes for r in readings)
        assert len({r.digit for r in readings}) == 1
        for reading in readings[1:]:
            np.testing.assert_allclose(reading.model_input, readings[0].model_input, atol=1e-6)


def test_strokes_change_the_reading_and_none_means_pixels(companion_model, held_out):
    recognizer = Recognizer.load(companion_model)
    images, strokes = zip(*(canvas_of(d, 18) for d in held_out))
    pixels = recognizer.predict_many(list(images))
    mixed = recognizer.predict_many(list(images), [s if i % 2 else None for i, s in enumerate(strokes)])
    for index, (a, b) in enumerate(zip(pixels, mixed)):
        if index % 2:
            assert b.used_strokes and a.probabilities != b.probabilities
        else:
            assert not b.used_strokes and a.probabilities == b.probabilities
    single = recognizer.predict(images[1], strokes=strokes[1])
    assert single.probabilities == pytest.approx(mixed[1].probabilities)
    with pytest.raises(ValueError):
        recognizer.predict_many(list(images), [None])


def test_calibration_is_applied_in_serving(companion_model, held_out):
    recognizer = Recognizer.load(companion_model)
    image, _ = canvas_of(held_out[0], 18)
    prediction = recognizer.predict(image)
    raw = recognizer.probabilities(prediction.model_input[None], calibrated=False)[0]
    expected = raw ** (1 / recognizer.image_temperature)
    expected = expected / expected.sum()
    if recognizer.reads_lines and recognizer.asks_line(expected[None])[0]:  # from pixels, if unsure:
        from digitrec.lines import line_input
        from digitrec.preprocess import ink_map

        # the line model's one-digit reading is weighed in
        expected = recognizer.with_line_opinion(expected[None], [line_input(ink_map(image)).pixels])[0]
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=1e-4, atol=1e-6)


def test_the_gate_head_decides_when_there_is_one(companion_model, tmp_path, held_out):
    """With a gate head its threshold decides (the gate's is for folders without one)."""
    image, _ = canvas_of(held_out[0], 18)
    folder = tmp_path / "head"
    shutil.copytree(companion_model, folder)
    card = registry.read_card(folder)
    card["calibration"].update(gate_threshold=-1.0, gate_head_threshold=1.0)
    registry.write_card(folder, card)
    assert Recognizer.load(folder).predict(image).status != Status.NOT_DIGIT
    card["calibration"].update(gate_threshold=1.0, gate_head_threshold=-1.0)
    registry.write_card(folder, card)
    assert Recognizer.load(folder).predict(image).status == Status.NOT_DIGIT
    (folder / GATE_HEAD_FILE).unlink()  # without the head, the gate's own threshold
    assert Recognizer.load(folder).predict(image).status != Status.NOT_DIGIT
    recognizer = Recognizer.load(companion_model)
    inputs = recognizer.predict(image).model_input[None]
    assert recognizer.not_digit_scores(inputs) == pytest.approx(
        recognizer.not_digit_scores(inputs, recognizer.features(inputs)))


def test_small_ink_is_judged_at_the_small_threshold(companion_model, tmp_path, held_out):
    """A 16x16 bitmap's jagged digit looked like a doodle to the head: small ink has its own threshold."""
    image, _ = canvas_of(held_out[0], 18)
    small = np.asarray(Image.fromarray(image[..., 3]).resize((16, 16), Image.BOX))
    folder = tmp_path / "small"
    shutil.copytree(companion_model, folder)
    card = registry.read_card(folder)
    card["calibration"].update(gate_head_threshold=-1.0, gate_head_small_threshold=1.0)
    registry.write_card(folder, card)
    recognizer = Recognizer.load(folder)
    assert recognizer.predict(image).status == Status.NOT_DIGIT
    assert recognizer.predict(small).status != Status.NOT_DIGIT
    assert [p.status == Status.NOT_DIGIT for p in recognizer.predict_many([small, image])] == [False, True]
    del card["calibration"]["gate_head_small_threshold"]  # an older card: one threshold for all ink
    registry.write_card(folder, card)
    assert Recognizer.load(folder).predict(small).status == Status.NOT_DIGIT


def test_not_digit_follows_the_cards_thresholds(companion_model, tmp_path, held_out):
    image, strokes = canvas_of(held_out[0], 18)
    flag_all = tmp_path / "flag-all"
    shutil.copytree(companion_model, flag_all)
    (flag_all / GATE_HEAD_FILE).unlink()  # the gate decides (the head's turn is the test above)
    card = registry.read_card(flag_all)
    card["calibration"]["gate_threshold"] = -1.0
    registry.write_card(flag_all, card)
    reading = Recognizer.load(flag_all).predict(image)
    assert reading.status == Status.NOT_DIGIT == "not_digit"
    assert reading.digit is None and reading.confidence is None and len(reading.probabilities) == 10
    card["calibration"].update(gate_threshold=-1.0, strokes_threshold=1.0)
    registry.write_card(flag_all, card)
    gate_only = Recognizer.load(flag_all)
    assert gate_only.predict(image).status == Status.NOT_DIGIT  # no strokes: the gate alone decides
    assert gate_only.predict(image, strokes=strokes).status != Status.NOT_DIGIT  # the pen path disagrees
    card["calibration"].update(gate_threshold=-1.0, strokes_threshold=-1.0)
    registry.write_card(flag_all, card)
    both = Recognizer.load(flag_all)
    assert both.predict(image, strokes=strokes).status == Status.NOT_DIGIT
    card["calibration"].update(gate_threshold=1.0, strokes_threshold=-1.0)
    registry.write_card(flag_all, card)
    assert Recognizer.load(flag_all).predict(image, strokes=strokes).status != Status.NOT_DIGIT


def test_a_model_folder_without_companions_ignores_strokes(tiny_model, held_out):
    recognizer = Recognizer.load(tiny_model)
    image, strokes = canvas_of(held_out[0], 18)
    assert not recognizer.reads_strokes
    with_strokes, without = recognizer.predict(image, strokes=strokes), recognizer.predict(image)
    assert not with_strokes.used_strokes and with_strokes.probabilities == without.probabilities


def test_stroke_augmentation_keeps_the_digit_recognisable_shape(pen_digits):
    rng = np.random.default_rng(0)
    digit = next(d for d in pen_digits if d.label == 7)
    for _ in range(20):
        varied = companions.augment(digit.strokes, rng, label=7)
        points = np.concatenate([np.asarray(s) for s in varied])
        extent = points.max(axis=0) - points.min(axis=0)
        assert 0.3 < extent[1] < 2.0  # normalised, never collapsed or exploded
        assert len(varied) in (len(digit.strokes), len(digit.strokes) + 1)  # a crossbar at most


def test_a_companions_card_entry_gives_its_files_size_or_none(tmp_path):
    from digitrec.companion_training import _update_card

    registry.write_card(tmp_path, {"files": {STROKES_FILE: 5, "model.tflite": 7}})
    _update_card(tmp_path, {}, {"strokes": {"file": STROKES_FILE}})
    assert registry.read_card(tmp_path)["files"] == {"model.tflite": 7}  # listed, but no file: no size
    (tmp_path / STROKES_FILE).write_bytes(b"abc")
    _update_card(tmp_path, {}, {"strokes": {"file": STROKES_FILE}})
    assert registry.read_card(tmp_path)["files"] == {STROKES_FILE: 3, "model.tflite": 7}


def test_some_zeros_are_slashed_across_their_middle(pen_digits):
    rng = np.random.default_rng(0)
    zero = next(d for d in pen_digits if d.label == 0 and len(d.strokes) == 1)
    slashed = 0
    for _ in range(400):
        varied = companions.augment(zero.strokes, rng, label=0, slashed_zeros=True)
        if len(varied) == 2:
            slashed += 1
            points = np.concatenate([np.asarray(s) for s in varied])
            middle = (points.min(axis=0) + points.max(axis=0)) / 2
            slash = np.asarray(varied[1])
            assert (slash[0] - middle)[1] * (slash[-1] - middle)[1] < 0  # across the middle, either way
            extent = (points.max(axis=0) - points.min(axis=0)).max()
            assert np.linalg.norm(slash - middle, axis=1).min() < 0.25 * extent  # through its inside
    assert abs(slashed / 400 - companions.SLASH_SHARE) < 0.05


def test_a_zero_slashed_where_it_lies_keeps_its_strokes_and_box(pen_digits):
    zero = next(d for d in pen_digits if d.label == 0 and d.writer == 3)
    points = np.concatenate([np.asarray(s) for s in zero.strokes])
    low, high = points.min(axis=0), points.max(axis=0)
    slashed = companions.slashed(zero.strokes, np.random.default_rng(1))
    assert slashed[:-1] == [list(stroke) for stroke in zero.strokes]
    slash = np.asarray(slashed[-1])
    assert ((slash >= low) & (slash <= high)).all()  # inside the 0's box: placed and sized as before
    middle = (low + high) / 2
    assert (slash[0] - middle)[1] * (slash[-1] - middle)[1] < 0  # across the middle


def test_zeros_are_slashed_only_when_asked_so_other_training_data_stays_the_same(pen_digits):
    """The line model's training numbers go through `augment` with the same seed: a 0 drawn
    without `slashed_zeros` takes exactly what any digit without a style of its own takes."""
    zero = next(d for d in pen_digits if d.label == 0)
    for seed in range(50):
        plain = companions.augment(zero.strokes, np.random.default_rng(seed), label=0)
        unlabelled = companions.augment(zero.strokes, np.random.default_rng(seed))
        assert plain == unlabelled


def _flag_and_stem(strokes):
    first = np.asarray(strokes[0], np.float64)
    peak = int(first[:, 1].argmin())
    return first[: peak + 1], first[peak:]


def test_a_one_gets_a_longer_flag_into_the_top_of_its_stem(pen_digits):
    """Writer 28's 1s (a long flag, then the stem) read as 7 or 9 from pixels: the image model's
    training 1s get longer flags; the stem and any other stroke stay where they were."""
    rng = np.random.default_rng(0)
    flagged = [d for d in pen_digits if d.label == 1 and d.writer <= 20
               and len(_flag_and_stem(d.strokes)[0]) > 3][:30]
    assert len(flagged) == 30
    for digit in flagged:
        arrays = [np.asarray(stroke, np.float64) for stroke in digit.strokes]
        longer = companions.with_long_flag(arrays, rng)
        flag, stem = _flag_and_stem(digit.strokes)
        new_flag, new_stem = _flag_and_stem(longer)
        assert np.array_equal(new_stem, stem) and all(
            np.array_equal(a, b) for a, b in zip(longer[1:], arrays[1:]))
        ratio = np.linalg.norm(new_flag[0] - new_flag[-1]) / np.linalg.norm(flag[0] - flag[-1])
        assert 1.3 - 1e-9 <= ratio <= 2.0 + 1e-9


def test_a_one_that_starts_at_its_top_gets_a_flag_from_below_left():
    stem = np.array([[0.0, -0.5], [0.0, 0.0], [0.0, 0.5]])
    for seed in range(20):
        flagged = companions.with_long_flag([stem.copy()], np.random.default_rng(seed))[0]
        start = flagged[0]
        assert np.array_equal(flagged[-3:], stem)
        assert start[0] < 0 and start[1] > -0.5  # left of and below the top
        assert 0.25 - 1e-9 <= np.linalg.norm(start - stem[0]) <= 0.55 + 1e-9  # of the 1's height
        assert 30 - 1e-6 <= np.degrees(np.arctan2(start[1] + 0.5, -start[0])) <= 60 + 1e-6  # not a 7's bar


def test_ones_get_long_flags_only_when_asked_so_other_training_data_stays_the_same(pen_digits, monkeypatch):
    """The trajectory and line models' training data go through `augment` without long flags."""
    one = next(d for d in pen_digits if d.label == 1)
    flagged = []
    real = companions.with_long_flag
    monkeypatch.setattr(companions, "with_long_flag",
                        lambda arrays, rng: flagged.append(1) or real(arrays, rng))
    rng = np.random.default_rng(0)
    companions.stroke_set([one] * 50, [], rng)  # the trajectory model's training set
    for seed in range(50):
        companions.augment(one.strokes, np.random.default_rng(seed), label=1)
    assert not flagged
    for seed in range(400):
        companions.augment(one.strokes, np.random.default_rng(seed), label=1, long_flags=True)
    assert abs(len(flagged) / 400 - companions.FLAG_SHARE) < 0.06


def test_strokes_are_rewritten_in_another_order_or_direction_with_the_same_ink(pen_digits):
    rng = np.random.default_rng(0)
    digit = next(d for d in pen_digits if d.label == 4 and len(d.strokes) == 2)
    strokes = [[tuple(point) for point in stroke] for stroke in digit.strokes]
    reversed_strokes = reordered = 0
    for _ in range(2000):
        rewritten = companions.rewritten(strokes, rng)
        assert sorted(map(sorted, rewritten)) == sorted(map(sorted, strokes))  # the same ink
        reversed_strokes += sum(stroke not in strokes for stroke in rewritten)
        reordered += [sorted(stroke) for stroke in rewritten] != [sorted(stroke) for stroke in strokes]
    assert abs(reversed_strokes / 4000 - companions.REVERSE_SHARE) < 0.02
    # a shuffle of two strokes leaves them in their order half of the time
    assert abs(reordered / 2000 - companions.REORDER_SHARE / 2) < 0.02


def test_the_trajectory_models_training_strokes_are_rewritten(pen_digits, monkeypatch):
    seen = []
    monkeypatch.setattr(companions, "rewritten", lambda strokes, rng: seen.append(strokes) or strokes)
    digits = pen_digits[:5]
    others = [("A", [[(0.0, 0.0), (0.5, -1.0), (1.0, 0.0)], [(0.25, -0.5), (0.75, -0.5)]])]
    x, y = companions.stroke_set(digits, others, np.random.default_rng(0))
    assert len(seen) == len(x) == 6  # every digit and non-digit, once
    assert companions.stroke_set(digits, others, None, augmented=False)[0].shape == x.shape
    assert len(seen) == 6  # not when reading them as they are


def test_a_nine_written_from_the_tail_up_is_read_from_its_strokes(committed_model, pen_digits):
    """Writer 30 writes its 9s from the tail's end up, then round the head. The trajectory model
    that never saw writer 30 (the fold the benchmarks read) read none of 24 such 9s as 9 (mostly
    8) until it learned strokes written the other way (`companions.rewritten`): now 22."""
    from digitrec.companion_training import fold_models_dir
    from digitrec.strokes import trajectory_features

    nines = [d for d in pen_digits if d.writer == 30 and d.label == 9]
    tail_up = [d for d in nines if d.strokes[0][0][1] > np.concatenate(d.strokes)[:, 1].mean()]
    assert len(tail_up) >= 20
    recognizer = Recognizer.load(committed_model).with_trajectory_model(
        (fold_models_dir(committed_model.name) / "fold-21-30.tflite").read_bytes())
    eleven = recognizer.stroke_probabilities(np.stack([trajectory_features(d.strokes) for d in tail_up]))
    assert eleven.shape == (len(tail_up), 11)  # ten digits and "not a digit"
    assert (eleven.argmax(axis=1) == 9).mean() >= 0.8  # "not a digit" (the eleventh) counts as wrong


def test_a_candidate_trained_in_the_app_is_calibrated_and_keeps_the_companions(companion_model, mnist_dir,
                                                                                active_models):
    from digitrec.config import TrainingConfig
    from digitrec.events import Finishing, FinishingStep, Saved
    from digitrec.jobs import run_training

    directory = active_models(companion_model)
    config = TrainingConfig(architecture="fast", epochs=1, mnist_fraction=0.05, augment=False,
                            pendigits=False, validation_size=500, batch_size=64)
    events = []
    folder = run_training(config, directory, mnist_folder=mnist_dir, version="candidate",
                          on_progress=events.append)
    card = registry.read_card(folder)
    assert (folder / STROKES_FILE).read_bytes() == (companion_model / STROKES_FILE).read_bytes()
    assert (folder / GATE_FILE).is_file()
    assert card["companions"]["strokes"]["inherited_from"] == companion_model.name
    # the line model reads the number's ink, not this image model's features: it comes along
    assert (folder / LINE_FILE).read_bytes() == (companion_model / LINE_FILE).read_bytes()
    assert card["companions"]["line"]["inherited_from"] == companion_model.name
    assert card["files"][STROKES_FILE] == (folder / STROKES_FILE).stat().st_size  # the size shown
    assert card["calibration"]["strokes_temperature"] == registry.read_card(companion_model)["calibration"][
        "strokes_temperature"]
    assert 0.05 <= card["calibration"]["image_temperature"] <= 20  # fitted on its own validation digits
    candidate = Recognizer.load(folder)
    assert candidate.reads_strokes and candidate.reads_lines
    assert candidate.features(np.zeros((1, 28, 28), np.float32)) is not None
    # Its own gate head, fitted on its own features (the active model's reads the active model's):
    # the thresholds are its own, and the page was told each step before the candidate was saved.
    assert (folder / GATE_HEAD_FILE).read_bytes() != (companion_model / GATE_HEAD_FILE).read_bytes()
    assert "inherited_from" not in card["companions"]["gate_head"]
    assert card["files"][GATE_HEAD_FILE] == (folder / GATE_HEAD_FILE).stat().st_size
    calibration = card["calibration"]
    assert candidate.gate_threshold == calibration["gate_head_threshold"] != registry.read_card(
        companion_model)["calibration"]["gate_head_threshold"]
    assert calibration["gate_head_small_threshold"] >= calibration["gate_head_threshold"]
    steps = [event.step for event in events if isinstance(event, Finishing)]
    assert list(dict.fromkeys(steps)) == [FinishingStep.SAVING, FinishingStep.EVALUATING,
                                          FinishingStep.CALIBRATING, FinishingStep.SERVED,
                                          FinishingStep.GATE_HEAD]
    # evaluated as served once, in the training: the pages read that instead of evaluating again
    assert (folder / registry.EVALUATION_FILE).is_file()
    assert read_evaluation(folder)["reports"][MNIST_TEST]["accuracy"] == pytest.approx(
        card["metrics"]["mnist_test_accuracy"], abs=0.002)
    assert isinstance(events[-1], Saved) and events[-1].version == "candidate"
    scores = candidate.not_digit_scores(np.zeros((2, 28, 28), np.float32))
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


@pytest.mark.parametrize("why", ["switched off", "no pen digits on this server"])
def test_a_candidate_without_its_own_head_leaves_the_gate_to_decide(companion_model, mnist_dir, active_models,
                                                                    monkeypatch, tmp_path, why):
    from digitrec.config import TrainingConfig
    from digitrec.jobs import run_training

    if why == "no pen digits on this server":  # its head could not learn what drawings look like
        monkeypatch.setenv("DIGITREC_PENDIGITS", str(tmp_path / "nowhere.tra"))
    directory = active_models(companion_model)
    config = TrainingConfig(architecture="fast", epochs=1, mnist_fraction=0.02, augment=False,
                            pendigits=False, validation_size=500, batch_size=64,
                            gate_head=why != "switched off")
    folder = run_training(config, directory, mnist_folder=mnist_dir, version="headless")
    card = registry.read_card(folder)
    assert (folder / GATE_FILE).is_file()
    assert not (folder / GATE_HEAD_FILE).exists()  # the active model's reads its own features, not these
    assert "gate_head_threshold" not in card["calibration"]
    assert "gate_head" not in card["companions"]
    assert Recognizer.load(folder).gate_threshold == card["calibration"]["gate_threshold"]


def test_without_features_the_gate_decides_alone(companion_model, held_out):
    """The Keras fallback answers no features: the head cannot read, so the gate and its own
    threshold decide (not the head's threshold applied to the gate's scores)."""
    keras_reader = Recognizer.load(companion_model, backend="keras")
    calibration = registry.read_card(companion_model)["calibration"]
    assert keras_reader.gate_threshold == calibration["gate_threshold"]
    assert Recognizer.load(companion_model).gate_threshold == calibration["gate_head_threshold"]
    image, _ = canvas_of(held_out[0], 18)
    prediction = keras_reader.predict(image)
    assert prediction.gate_score == pytest.approx(
        float(keras_reader.not_digit_scores(prediction.model_input[None])[0]))


def test_non_digits_redrawn_as_small_bitmaps_are_small_ink():
    from digitrec import nondigits
    from digitrec.inference import SMALL_INK_SIDE

    drawn = companions.drawn_non_digits(nondigits.letters("validation")[:6], np.random.default_rng(0))
    small = companions.as_small_bitmaps(drawn, np.random.default_rng(1))
    assert small.shape == drawn.shape and small.dtype == np.float32
    assert (small.reshape(len(small), -1).max(axis=1) > 0.5).all()  # ink survives the shrinking
    rng = np.random.default_rng(1)
    for model_input in drawn:  # the same draws: each a bitmap of at most 36 px whose ink counts as small
        bitmap = data.small_bitmap(np.round(model_input * 255).astype(np.uint8), rng)
        assert max(bitmap.shape) <= data.SMALL_SIZES[1]
        assert 0 < preprocess(bitmap).ink_side <= SMALL_INK_SIDE


def test_non_digits_drawn_a_chunk_at_a_time_are_the_same_drawings(monkeypatch):
    # The gate head's data held every canvas at once (3.7 GB); drawn in chunks they must not change.
    from digitrec import nondigits

    others = nondigits.non_digits("validation", 4, seed=0)[:7]
    whole = companions.drawn_non_digits(others, np.random.default_rng(5), repeats=2, wide=True)
    monkeypatch.setattr(companions, "DRAW_CHUNK", 3)
    chunked = companions.drawn_non_digits(others, np.random.default_rng(5), repeats=2, wide=True)
    assert whole.shape == (14, 28, 28) and whole.dtype == np.float32
    np.testing.assert_array_equal(chunked, whole)
    assert whole.max() > 0.5  # drawings, not blanks
    assert companions.drawn_non_digits([], np.random.default_rng(5)).shape == (0, 28, 28)
