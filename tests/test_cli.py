"""The command line: help, predict (text and JSON), models, evaluate."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digitrec import registry
from digitrec.data import draw_pen_digit

REPO = registry.REPO_MODELS.parent


def run(*arguments, env=None):
    return subprocess.run([sys.executable, "-m", "digitrec", *arguments], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=env)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "predict", "models"):
        assert command in result.stdout


# Every TrainingConfig field but these has a `train` option (saved samples come from the app's
# database, which the command line does not read).
NOT_ON_THE_COMMAND_LINE = {"user_samples", "sample_weight"}


def test_train_help_has_an_option_for_every_training_setting():
    from dataclasses import fields

    from digitrec.cli import training_option
    from digitrec.config import TrainingConfig

    result = run("train", "--help")
    assert result.returncode == 0, result.stderr
    options = {setting.name: training_option(setting.name) for setting in fields(TrainingConfig)}
    assert {name for name, option in options.items() if option is None} == NOT_ON_THE_COMMAND_LINE
    for name, option in options.items():
        if option is not None:
            assert f"{option} " in result.stdout or f"{option}\n" in result.stdout, f"{name}: {option}"
    # The spellings scripts and the README use.
    for option in ("--epochs", "--batch-size", "--learning-rate", "--mnist-fraction", "--no-augment",
                   "--no-pendigits", "--pen-renderings", "--wide-pens", "--small-images",
                   "--weight-average", "--seed", "--architecture"):
        assert option in result.stdout, option
    assert "(default: 15)" in result.stdout  # defaults come from TrainingConfig


def test_train_options_build_the_training_config():
    from dataclasses import replace

    from digitrec.cli import build_parser, config_from_args
    from digitrec.config import TrainingConfig

    def parsed(*arguments):
        return config_from_args(build_parser().parse_args(["train", *arguments]))

    assert parsed() == TrainingConfig()
    assert parsed("--no-augment", "--no-pendigits") == replace(TrainingConfig(), augment=False,
                                                               pendigits=False)
    assert parsed("--pen-styles") == replace(TrainingConfig(), pen_styles=True)
    assert parsed("--wide-pens", "--weight-average", "--pen-renderings", "4", "--small-images", "500",
                  "--epochs", "3", "--learning-rate", "0.01", "--architecture", "fast") == replace(
        TrainingConfig(), wide_pens=True, weight_average=True, pen_renderings=4, small_images=500, epochs=3,
        learning_rate=0.01, architecture="shallow")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--epochs", "three"])
    with pytest.raises(ValueError, match="pen_renderings"):
        parsed("--pen-renderings", "9")


@pytest.fixture()
def drawn_files(tmp_path, pen_digits):
    digits = [next(d for d in pen_digits if d.writer > 20 and d.label == label) for label in (3, 8)]
    paths = []
    for digit in digits:
        path = tmp_path / f"digit-{digit.label}.png"
        Image.fromarray(draw_pen_digit(digit)).save(path)
        paths.append(path)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((100, 100), 255, np.uint8)).save(blank)
    return paths, blank


def test_predict_json(committed_model, drawn_files):
    paths, blank = drawn_files
    result = run("predict", "--json", "--model", str(committed_model), *map(str, paths), str(blank))
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["model"] == committed_model.name
    digits = [p["digit"] for p in output["predictions"]]
    assert digits == [3, 8, None]
    assert output["predictions"][2]["status"] == "empty"
    assert abs(sum(output["predictions"][0]["probabilities"]) - 1) < 1e-3


def test_predict_text(committed_model, drawn_files):
    paths, _ = drawn_files
    result = run("predict", "--model", str(committed_model), str(paths[0]))
    assert result.returncode == 0
    assert f"{paths[0]}: 3 (" in result.stdout


def test_models_lists_the_active_one(models_copy):
    import os

    result = run("models", env={**os.environ, "DIGITREC_MODELS_DIR": str(models_copy)})
    assert result.returncode == 0
    assert any(line.startswith("*") for line in result.stdout.splitlines())


def test_evaluate_prints_both_figures(tiny_model, mnist_dir):
    import os

    result = run("evaluate", "--model", str(tiny_model),
                 env={**os.environ, "DIGITREC_MNIST_DIR": str(mnist_dir)})
    assert result.returncode == 0, result.stderr
    assert "MNIST test accuracy:" in result.stdout
    assert "canvas-drawn pendigits, held-out writers 21-30:" in result.stdout


def test_missing_mnist_is_one_clear_line(tiny_model, tmp_path):

    result = run("evaluate", "--model", str(tiny_model), "--mnist-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error:")
    assert "DIGITREC_MNIST_DIR" in result.stderr


TINY_OPTIONS = ["--architecture", "shallow", "--epochs", "1", "--mnist-fraction", "0.05", "--no-augment",
                "--no-pendigits", "--validation-size", "300", "--batch-size", "64", "--seed", "3",
                "--validation-seed", "1"]


def test_prepare_fit_adopt_trains_elsewhere_and_saves_here(tmp_path, mnist_dir):
    """The GPU route: prepare writes the arrays, fit trains on them alone (any Keras backend),
    adopt evaluates and saves the folder here; a record that does not match the data is refused."""
    import os

    env = {**os.environ, "DIGITREC_MNIST_DIR": str(mnist_dir)}  # the suite's cache: MNIST preprocessed once
    arrays, network = tmp_path / "data.npz", tmp_path / "net.keras"
    result = run("prepare", *TINY_OPTIONS, "--out", str(arrays), env=env)
    assert result.returncode == 0, result.stderr
    result = run("fit", *TINY_OPTIONS, "--data", str(arrays), "--out", str(network), env=env)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "net.keras.json").read_text())
    assert record["config"]["seed"] == 3 and record["config"]["validation_seed"] == 1
    assert record["epochs_done"] == 1 and record["counts"] == {"mnist": 2985}
    models = tmp_path / "models"
    result = run("adopt", str(network), "--models-dir", str(models), "--version", "adopted", env=env)
    assert result.returncode == 0, result.stderr
    card = registry.read_card(models / "adopted")
    assert card["training"]["config"] == record["config"]
    assert card["training"]["trained_on"] == record["trained_on"]
    assert card["metrics"]["mnist_test_accuracy"] > 0.5  # one epoch on 2,985 digits: it learned
    assert (models / "adopted" / registry.TFLITE_FILE).is_file()
    record["counts"] = {"mnist": 999}
    (tmp_path / "net.keras.json").write_text(json.dumps(record))
    result = run("adopt", str(network), "--models-dir", str(models), "--version", "wrong", env=env)
    assert result.returncode == 2 and "other data" in result.stderr
    assert not (models / "wrong").exists()
