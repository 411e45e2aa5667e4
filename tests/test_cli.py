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
