"""Averaging image models: the averaged logits, the folder it writes, and what serves it."""

import shutil

import numpy as np
import pytest

from digitrec import averaging, registry
from digitrec.config import TrainingConfig
from digitrec.errors import ModelError
from digitrec.inference import Recognizer
from digitrec.preprocess import PREPROCESS_VERSION


def logits(model, x):
    import keras

    features = keras.Model(model.inputs, model.layers[-1].input).predict(x, verbose=0)
    kernel, bias = model.layers[-1].get_weights()
    return features @ kernel + bias


def test_the_average_reads_the_mean_of_the_models_logits():
    import keras

    from digitrec.model import build_model

    keras.utils.set_random_seed(3)
    models = [build_model(TrainingConfig(architecture=name)) for name in ("shallow", "deep")]
    x = np.random.default_rng(0).random((6, 28, 28, 1)).astype(np.float32)
    mean = (logits(models[0], x) + logits(models[1], x)) / 2
    expected = np.exp(mean - mean.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    averaged = averaging.average_models(models)
    assert np.allclose(averaged.predict(x, verbose=0), expected, atol=1e-5)
    assert averaged.layers[-1].input.shape[-1] == 2 * 128  # both networks' features


def test_one_model_or_a_model_without_probabilities_is_refused():
    import keras

    from digitrec.model import build_model

    model = build_model(TrainingConfig(architecture="shallow"))
    with pytest.raises(ValueError, match="average 2 to 4"):
        averaging.average_models([model])
    headless = keras.Model(model.inputs, model.layers[-2].output)
    with pytest.raises(ValueError, match="probabilities"):
        averaging.average_models([headless, model])


def test_average_folders_writes_a_served_calibrated_folder(companion_model, tmp_path, monkeypatch):
    # A model averaged with itself reads exactly as it does: the folder, its .tflite (with the
    # features personal adaptation needs), its calibration and its companions all check out.
    monkeypatch.setattr(averaging, "TFLITE_BUDGET_BYTES", 10**9)  # float32 weights, as the nets'
    twin = tmp_path / "twin"
    shutil.copytree(companion_model, twin)
    folder = averaging.average_folders([companion_model, twin], version="pair", directory=tmp_path / "out",
                                       log=None)
    card = registry.read_card(folder)
    single = registry.read_card(companion_model)
    assert card["metrics"]["mnist_test_accuracy"] == pytest.approx(single["metrics"]["mnist_test_accuracy"])
    assert [part["version"] for part in card["averaged_from"]] == [companion_model.name, "twin"]
    pair, alone = Recognizer(folder), Recognizer(companion_model)
    assert pair.reads_strokes and pair.exports_features
    x = np.random.default_rng(1).random((5, 28, 28)).astype(np.float32)
    assert np.allclose(pair.probabilities(x, calibrated=False), alone.probabilities(x, calibrated=False),
                       atol=1e-4)
    assert card["calibration"]["image_temperature"] == pytest.approx(
        single["calibration"]["image_temperature"], rel=0.05)


def test_models_with_different_preprocessing_are_not_averaged(tiny_model, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    card = registry.read_card(other)
    card["preprocess_version"] = "0"
    registry.write_card(other, card)
    with pytest.raises(ModelError, match="preprocessed"):
        averaging.average_folders([tiny_model, other], directory=tmp_path / "out", log=None)


def test_nets_of_preprocessing_versions_that_read_alike_are_averaged(tiny_model, tmp_path):
    """Version 3 only leaves a lone stray dot out of what version 2 made: a net trained on either
    reads the other's inputs alike (the committed version-2 pair is served version-3 inputs)."""
    folders = []
    for version in ("2", "3"):
        folder = tmp_path / f"v{version}"
        shutil.copytree(tiny_model, folder)
        card = registry.read_card(folder)
        card["preprocess_version"] = version
        registry.write_card(folder, card)
        folders.append(folder)
    card = registry.read_card(averaging.average_folders(folders, version="pair", directory=tmp_path / "out",
                                                        log=None))
    assert [part["preprocess_version"] for part in card["averaged_from"]] == ["2", "3"]
    assert card["preprocess_version"] == PREPROCESS_VERSION
    card = registry.read_card(folders[0])
    card["preprocess_version"] = "1"
    registry.write_card(folders[0], card)
    with pytest.raises(ModelError, match="preprocessed"):
        averaging.average_folders(folders, directory=tmp_path / "out", log=None)


def test_a_net_split_from_an_average_reads_as_it_did(companion_model, tiny_model, tmp_path):
    """Each net's features and head rows come back exactly; the bias is the mean of the nets'."""
    import keras

    sources = (companion_model, tiny_model)
    nets = [keras.models.load_model(f / registry.KERAS_FILE, compile=False) for f in sources]
    parts = [{"version": f.name, "architecture": "shallow", "mnist_test_accuracy": 0.9,
              "training": registry.read_card(f)["training"], "preprocess_version": "3"} for f in sources]
    folder = registry.save_model(averaging.average_models(nets), {"averaged_from": parts}, "pair",
                                 tmp_path / "out")
    x = np.random.default_rng(2).random((6, 28, 28, 1)).astype(np.float32)
    biases = [net.get_layer("probabilities").get_weights()[1] for net in nets]
    for index, net in enumerate(nets):
        split = averaging.split_folder(folder, index, directory=tmp_path / "split")
        card = registry.read_card(split)
        assert card["split_from"] == {"version": "pair", "net": index,
                                      "bias": "the average's: the mean of its nets' biases"}
        assert card["training"] == parts[index]["training"] and card["preprocess_version"] == "3"
        read = keras.models.load_model(split / registry.KERAS_FILE, compile=False)
        features = keras.Model(net.inputs, net.get_layer("probabilities").input).predict(x, verbose=0)
        logits = features @ net.get_layer("probabilities").get_weights()[0] + np.mean(biases, axis=0)
        probabilities = np.exp(logits - logits.max(1, keepdims=True))
        assert np.allclose(read.predict(x, verbose=0), probabilities / probabilities.sum(1, keepdims=True),
                           atol=1e-5)
    with pytest.raises(ModelError, match="no net 2"):
        averaging.split_folder(folder, 2, directory=tmp_path / "split")


def test_companions_come_from_the_folder_named(companion_model, tiny_model, tmp_path):
    """`average A B --companions C`: the trajectory model and gate (and their held-out fold
    models) of C, not of A, which may have none; never C's gate head (it reads C's features)."""
    from digitrec.companion_training import GATE_FILE, STROKES_FILE
    from digitrec.inference import GATE_HEAD_FILE

    source = tmp_path / "source"
    shutil.copytree(companion_model, source)
    (source / "cross-validation").mkdir(exist_ok=True)
    (source / "cross-validation" / "fold-21-30.tflite").write_bytes(b"fold")
    twin = tmp_path / "twin"
    shutil.copytree(tiny_model, twin)
    plain = averaging.average_folders([tiny_model, twin], version="plain", directory=tmp_path / "out",
                                      log=None)
    assert not (plain / STROKES_FILE).exists()  # the first folder has no companions
    folder = averaging.average_folders([tiny_model, twin], version="equipped", directory=tmp_path / "out",
                                       log=None, companions_from=source)
    assert (folder / STROKES_FILE).read_bytes() == (source / STROKES_FILE).read_bytes()
    assert (folder / GATE_FILE).read_bytes() == (source / GATE_FILE).read_bytes()
    assert (folder / "cross-validation" / "fold-21-30.tflite").read_bytes() == b"fold"
    assert not (folder / GATE_HEAD_FILE).exists()
    assert registry.read_card(folder)["companions"]["strokes"]["inherited_from"] == "source"


def test_an_average_too_large_for_the_budget_is_served_with_half_weights(companion_model, tmp_path,
                                                                         monkeypatch):
    from digitrec.companion_training import export_image_features

    twin = tmp_path / "twin"
    shutil.copytree(companion_model, twin)
    monkeypatch.setattr(averaging, "TFLITE_BUDGET_BYTES", 10**9)
    full = averaging.average_folders([companion_model, twin], version="full", directory=tmp_path / "out",
                                     log=None)
    monkeypatch.setattr(averaging, "TFLITE_BUDGET_BYTES", 1000)
    half = averaging.average_folders([companion_model, twin], version="half", directory=tmp_path / "out",
                                     log=None)
    card = registry.read_card(half)
    assert card["tflite_weights"] == "float16" and "tflite_weights" not in registry.read_card(full)
    size = (half / registry.TFLITE_FILE).stat().st_size
    assert size < 0.6 * (full / registry.TFLITE_FILE).stat().st_size
    assert card["files"][registry.TFLITE_FILE] == size
    x = np.random.default_rng(2).random((8, 28, 28)).astype(np.float32)
    assert np.allclose(Recognizer(half).probabilities(x, calibrated=False),
                       Recognizer(full).probabilities(x, calibrated=False), atol=5e-3)
    export_image_features(half)  # companions re-export the file: still half
    assert (half / registry.TFLITE_FILE).stat().st_size == size
