"""Training data: preprocessed sets cached under names that never change, and what prepare_data
assembles (MNIST share, saved samples bounded, small bitmaps from training digits only)."""

import hashlib
import json

import numpy as np
import pytest

from digitrec import data, dataset
from digitrec.config import TrainingConfig
from digitrec.dataset import as_model_input, prepare_data, to_uint8
from digitrec.preprocess import PREPROCESS_VERSION

TINY = dict(architecture="shallow", epochs=1, mnist_fraction=0.05, augment=False, pendigits=False,
            validation_size=300, batch_size=64)


@pytest.fixture()
def fake_mnist():
    rng = np.random.default_rng(0)
    images = (rng.random((6, 28, 28)) * 255).astype(np.uint8)
    return data.Mnist(images, np.arange(6) % 10, images[:2], np.arange(2), {"a.gz": "0123", "b.gz": "4567"})


def test_cache_files_keep_their_names(tmp_path, monkeypatch, fake_mnist, pen_digits):
    """Warm caches (a gigabyte of preprocessed data) are found by these names: they must not drift."""
    monkeypatch.setenv("DIGITREC_CACHE_DIR", str(tmp_path))
    assert PREPROCESS_VERSION == "3" and dataset.CACHE_FORMAT == "u8"
    digest = hashlib.md5(json.dumps(fake_mnist.checksums, sort_keys=True).encode()).hexdigest()[:12]
    prepared = dataset.preprocessed_mnist(fake_mnist)
    dataset.preprocessed_pendigits(pen_digits[:3], 2, seed=7, tag="train")
    dataset.preprocessed_pendigits(pen_digits[:3], 1, seed=5, tag="x", wide=True)
    indices = np.array([0, 2], np.int64)
    dataset.preprocessed_small_bitmaps(fake_mnist, indices, seed=1)
    small = hashlib.md5(json.dumps(fake_mnist.checksums, sort_keys=True).encode()
                        + indices.tobytes()).hexdigest()[:12]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([
        f"mnist-{digest}-p3-u8.npz", "pendigits-train-3x2-s7-p3-u8.npz", "pendigits-x-3x1-s5-wide-p3-u8.npz",
        f"small-{small}-s1-p3-u8.npz", "locks"])  # locks/: one builder per file at a time
    assert prepared["x_train"].dtype == np.uint8 and prepared["x_train"].shape == (6, 28, 28)
    # A second call reads the file instead of preprocessing again.
    monkeypatch.setattr(dataset, "_preprocess_uint8", lambda images: pytest.fail("rebuilt a cached set"))
    again = dataset.preprocessed_mnist(fake_mnist)
    assert (again["x_train"] == prepared["x_train"]).all()


def test_slashed_zeros_are_drawn_only_where_asked_and_nothing_else_changes(tmp_path, monkeypatch, pen_digits):
    # The gate's head took writer 28's slashed zeros (Ø) for "not a digit" (5 of the 7 held-out pen
    # digits flagged from pixels): it now learns from some slashed 0s.
    monkeypatch.setenv("DIGITREC_CACHE_DIR", str(tmp_path))
    digits = [d for d in pen_digits if d.writer == 1 and d.label in (0, 6)][:40]
    zeros = sum(d.label == 0 for d in digits) * 2
    plain = dataset.preprocessed_pendigits(digits, 2, seed=3, tag="t", wide=True)
    slashed = dataset.preprocessed_pendigits(digits, 2, seed=3, tag="t", wide=True, slashed_zeros=0.5)
    assert (plain["y"] == slashed["y"]).all()
    changed = (plain["x"] != slashed["x"]).any(axis=(1, 2))
    assert not changed[plain["y"] == 6].any()  # other digits are drawn exactly as without
    assert 0.25 * zeros <= changed.sum() <= 0.75 * zeros
    assert sorted(p.name for p in tmp_path.glob("pendigits-*")) == [
        f"pendigits-t-{len(digits)}x2-s3-wide-p3-u8.npz",
        f"pendigits-t-{len(digits)}x2-s3-wide-slashed0.5-p3-u8.npz"]


def test_styled_drawings_are_every_second_drawing_and_nothing_else_changes(tmp_path, monkeypatch, pen_digits):
    """`pen_styles` varies every second drawing of each digit as people write; the other drawings,
    their places and pens are those drawn without."""
    monkeypatch.setenv("DIGITREC_CACHE_DIR", str(tmp_path))
    digits = [d for d in pen_digits if d.writer == 2][:30]
    plain = dataset.preprocessed_pendigits(digits, 2, seed=3, tag="t", wide=True)
    styled = dataset.preprocessed_pendigits(digits, 2, seed=3, tag="t", wide=True, styles=True)
    assert (plain["y"] == styled["y"]).all()
    changed = (plain["x"] != styled["x"]).any(axis=(1, 2))
    assert not changed[0::2].any() and changed[1::2].all()
    assert sorted(p.name for p in tmp_path.glob("pendigits-*")) == [
        "pendigits-t-30x2-s3-wide-p3-u8.npz", "pendigits-t-30x2-s3-wide-styles-p3-u8.npz"]


def test_uint8_round_trip_is_within_half_a_step():
    values = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(as_model_input(to_uint8(values)) - values).max() <= 0.5 / 255 + 1e-7
    assert as_model_input(values).dtype == np.float32


def test_prepare_data_oversamples_user_samples(mnist):
    config = TrainingConfig(**{**TINY, "sample_weight": 3, "user_samples": True})
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    y = np.array([1, 2, 3], np.uint8)
    prepared = prepare_data(config, mnist, samples=(x, y))
    assert prepared.counts["user_samples"] == 3
    assert len(prepared.y_train) == prepared.counts["mnist"] + 9
    assert (as_model_input(prepared.x_train[-9:][:3]) == as_model_input(to_uint8(x[0]))).all()
    assert len(prepared.y_val) == 300 and prepared.x_test.shape == (10000, 28, 28)


def test_mnist_share_is_a_share_of_the_training_images(mnist):
    # the form's validation size
    config = TrainingConfig(architecture="fast", mnist_fraction=0.05, pendigits=False)
    prepared = prepare_data(config, mnist)
    assert len(prepared.y_val) == 5000
    assert prepared.counts["mnist"] == len(prepared.y_train) == 2750  # 5% of the other 55,000


def test_saved_samples_are_a_small_share_of_the_training_set(mnist):
    config = TrainingConfig(**{**TINY, "sample_weight": 3, "user_samples": True})
    x = np.zeros((50, 28, 28), np.float32)
    prepared = prepare_data(config, mnist, samples=(x, np.full(50, 4, np.uint8)))
    assert len(prepared.y_train) - prepared.counts["mnist"] <= 0.005 * prepared.counts["mnist"]


def test_small_bitmaps_come_from_training_digits_only(mnist):
    config = TrainingConfig(**{**TINY, "small_images": 120})
    prepared = prepare_data(config, mnist)
    assert prepared.counts["small_bitmaps"] == 120
    assert len(prepared.y_train) == prepared.counts["mnist"] + 120
    # None of them is a validation digit redrawn: the validation digits' labels and the small
    # bitmaps' sources are disjoint index sets (rebuilt here from the same seed).
    order = np.random.default_rng(config.seed).permutation(60000)
    validation, rest = set(order[:config.validation_size]), order[config.validation_size:]
    chosen = np.random.default_rng(config.seed)
    chosen.permutation(60000)
    picked = chosen.choice(rest, 120, replace=False)
    assert not validation & set(picked)
    assert (prepared.y_train[-120:] == mnist.y_train[np.sort(picked)]).all()


def test_validation_split_is_the_split_prepare_data_holds_back(mnist):
    """Averaging and calibration find a model's validation digits by validation_split: it must be
    exactly the split prepare_data made, for a card's dict as for a config."""
    config = TrainingConfig(**TINY)
    prepared = prepare_data(config, mnist)
    validation, rest = dataset.validation_split(config, len(mnist.y_train))
    assert len(validation) == 300 and len(set(validation) | set(rest)) == len(mnist.y_train)
    assert (prepared.y_val == mnist.y_train[validation]).all()
    from_card, _ = dataset.validation_split({"seed": 1, "validation_size": 300}, len(mnist.y_train))
    assert (from_card == validation).all()


def test_a_validation_seed_keeps_one_split_across_seeds():
    """Networks trained with seeds 1 and 2 and validation seed 1 hold back the same digits (so
    their average is calibrated on all of them); without it the seed decides, as before."""
    one = dataset.validation_split(TrainingConfig(seed=1), 60_000)[0]
    two = dataset.validation_split(TrainingConfig(seed=2, validation_seed=1), 60_000)[0]
    other = dataset.validation_split(TrainingConfig(seed=2), 60_000)[0]
    assert (one == two).all() and len(set(one) & set(other)) < 1000
    card = {"seed": 2, "validation_seed": 1, "validation_size": 5000}
    assert (dataset.validation_split(card, 60_000)[0] == one).all()


def test_training_arrays_round_trip(tmp_path, mnist):
    """prepare writes what fit reads on another machine: the same arrays, counts and checksums."""
    config = TrainingConfig(**TINY)
    prepared = prepare_data(config, mnist)
    path = tmp_path / "data.npz"
    dataset.save_training_arrays(prepared, config, path)
    loaded = dataset.load_training_arrays(path, TrainingConfig(**{**TINY, "epochs": 3, "seed": 1}))
    assert (loaded.x_train == prepared.x_train).all() and (loaded.y_val == prepared.y_val).all()
    assert loaded.counts == prepared.counts and loaded.checksums == prepared.checksums
    assert len(loaded.y_test) == 0


def test_fit_refuses_arrays_prepared_with_other_data_settings(tmp_path, mnist):
    """A validation seed or a share of MNIST that differs from prepare's would make fit's record
    claim data the network never saw (adopt compares only counts and checksums)."""
    config = TrainingConfig(**TINY)
    path = tmp_path / "data.npz"
    dataset.save_training_arrays(prepare_data(config, mnist), config, path)
    for other in ({"validation_seed": 7}, {"mnist_fraction": 0.1}, {"seed": 2}):
        with pytest.raises(ValueError, match="other data settings"):
            dataset.load_training_arrays(path, TrainingConfig(**{**TINY, **other}))


def test_fit_reads_arrays_prepared_before_pen_styles_existed(tmp_path, mnist):
    config = TrainingConfig(**TINY)
    path = tmp_path / "data.npz"
    dataset.save_training_arrays(prepare_data(config, mnist), config, path)
    with np.load(path) as stored:
        arrays = dict(stored)
    about = json.loads(str(arrays["about"]))
    del about["settings"]["pen_styles"]
    np.savez_compressed(path, **{**arrays, "about": json.dumps(about)})
    assert len(dataset.load_training_arrays(path, config).y_train) == len(arrays["y_train"])
    with pytest.raises(ValueError, match="pen_styles"):
        dataset.load_training_arrays(path, TrainingConfig(**{**TINY, "pen_styles": True}))


def test_held_out_digits_of_an_average_are_those_every_network_held_out():
    """Calibration and the gate's thresholds of an averaged folder use digits none of its networks
    trained on: with two validation splits that is their intersection, not the first split
    (an averaged card has no training config of its own)."""
    one = {"training": {"config": {"seed": 1, "validation_size": 5000}}}
    other = {"training": {"config": {"seed": 2, "validation_size": 5000}}}
    split = lambda seed: set(dataset.validation_split({"seed": seed}, 60_000)[0].tolist())  # noqa: E731
    assert set(dataset.held_out_indices(one, 60_000)) == split(1)
    both = dataset.held_out_indices({"averaged_from": [one, other]}, 60_000)
    assert set(both) == split(1) & split(2) and 0 < len(both) < 1000
    shared = {"training": {"config": {"seed": 2, "validation_seed": 1, "validation_size": 5000}}}
    assert set(dataset.held_out_indices({"averaged_from": [one, shared]}, 60_000)) == split(1)


def test_two_wanting_one_cache_at_once_build_it_once(tmp_path, monkeypatch):
    # The suite's two workers (and a training beside a benchmark) had each preprocessed MNIST,
    # minutes of both cores, when they wanted it at the same time.
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from digitrec.dataset import cached

    monkeypatch.setenv("DIGITREC_CACHE_DIR", str(tmp_path))
    builds, started = [], threading.Barrier(2)

    def build():
        builds.append(threading.get_ident())
        time.sleep(0.5)  # a slow build: the other caller arrives while it runs
        return {"x": np.arange(3)}

    def want(_):
        started.wait()
        return cached("shared", build)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(want, range(2)))
    assert len(builds) == 1
    assert all(np.array_equal(result["x"], np.arange(3)) for result in results)
    assert [path.name for path in tmp_path.glob("shared-*.npz")] != []
