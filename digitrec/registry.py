"""Model folders with their cards, the active pointer, promote / rollback / delete.

A model folder holds `model.keras`, `model.tflite` and `card.json`. The file `ACTIVE` in the
model directory names the active folder; without one (a fresh clone: the pointer files are
not tracked by git) the committed model named in `COMMITTED` is active. `PROMOTED` logs
every version ever made active, so a lost pointer falls back to the last promoted model,
never to a candidate nobody promoted. Every change of a pointer writes a temporary file and
renames it over the old one, so a crash at any moment leaves a loadable model.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from digitrec.errors import ModelError

REPO_MODELS = Path(__file__).resolve().parents[1] / "models"
POINTER = "ACTIVE"
HISTORY = "HISTORY"  # previously active versions, newest last, for rollback
PROMOTED = "PROMOTED"  # every version made active (promote, rollback, --activate), newest last
COMMITTED = "COMMITTED"  # tracked by git: the committed model, active when no pointer was ever written
PROMOTED_KEPT = 100  # lines kept in the PROMOTED log
CARD = "card.json"
KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
EVALUATION_FILE = "evaluation.json"  # its evaluation as served, stored by its training (digitrec.evaluate)
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


RESERVED = (POINTER, HISTORY, PROMOTED, COMMITTED)


def models_dir() -> Path:
    """The model directory: DIGITREC_MODELS_DIR, else models/ in the repo if writable, else a temp dir.

    A directory other than the repository's starts as a copy of the committed models, so
    the app always has a model to serve and models trained in the browser land somewhere
    writable (some hosts mount the app's own folder read-only).
    """
    configured = os.environ.get("DIGITREC_MODELS_DIR")
    if configured:
        directory = Path(configured)
    elif os.access(REPO_MODELS if REPO_MODELS.exists() else REPO_MODELS.parent, os.W_OK):
        return REPO_MODELS
    else:
        directory = Path(tempfile.gettempdir()) / "digitrec-models"
    if directory.resolve() != REPO_MODELS.resolve() and not _has_models(directory):
        _seed_from_repo(directory)  # only a new, empty folder: a lost pointer is reported, not reset
    return directory


class ModelsHome(StrEnum):
    """Where `models_dir` keeps the models: what the Models page tells an admin."""

    REPOSITORY = "repository"  # the app's own models/ folder
    CONFIGURED = "configured"  # DIGITREC_MODELS_DIR
    TEMPORARY = "temporary"  # the app's folder cannot be written (a read-only host): a temp folder


def models_home() -> ModelsHome:
    """Which of the places `models_dir` chooses it chooses now."""
    if os.environ.get("DIGITREC_MODELS_DIR"):
        return ModelsHome.CONFIGURED
    return ModelsHome.REPOSITORY if models_dir() == REPO_MODELS else ModelsHome.TEMPORARY


def _has_models(directory: Path) -> bool:
    return directory.is_dir() and any(
        (folder / CARD).is_file() for folder in directory.iterdir() if VERSION_PATTERN.match(folder.name))


def _seed_from_repo(directory: Path) -> None:
    committed = committed_version(REPO_MODELS)
    active = active_version(REPO_MODELS, required=False) or committed
    if active is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for version in {active, committed} - {None}:
        if not (directory / version).exists():
            shutil.copytree(REPO_MODELS / version, directory / version)
    if committed:
        write_atomically(directory / COMMITTED, committed + "\n")
    write_atomically(directory / PROMOTED, active + "\n")
    write_atomically(directory / POINTER, active + "\n")


def check_version(name: str) -> str:
    """Return `name` if it is a safe model folder name (no paths, no dots first), else raise."""
    if not isinstance(name, str) or not VERSION_PATTERN.match(name) or name in RESERVED:
        raise ValueError(f"not a valid model version name: {name!r}")
    return name


def version_path(version: str, directory: Path | None = None) -> Path:
    """The folder of a model version inside the model directory."""
    return (directory or models_dir()) / check_version(version)


def new_version_name(prefix: str = "mnist-cnn") -> str:
    """A fresh, sortable version name: prefix plus UTC time to the second."""
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def read_card(folder: Path) -> dict:
    """Read a model folder's card; ModelError if absent or unreadable."""
    try:
        return json.loads((Path(folder) / CARD).read_text())
    except (OSError, ValueError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise ModelError(f"{Path(folder).name}: model card unreadable ({why})") from None


def write_card(folder: Path, card: dict) -> None:
    """Replace a model folder's card atomically (a crash leaves the old card or the new one)."""
    write_atomically(Path(folder) / CARD, json.dumps(card, indent=2) + "\n")


def list_models(directory: Path | None = None) -> list[dict]:
    """Cards of every model folder, newest first, each with `version` and `active` filled in."""
    directory = directory or models_dir()
    active = active_version(directory, required=False)
    cards = []
    for folder in sorted(directory.glob("*/"), reverse=True):
        if not VERSION_PATTERN.match(folder.name) or not (folder / CARD).is_file():
            continue
        try:
            card = read_card(folder)
        except ModelError:
            continue
        cards.append({**card, "version": folder.name, "active": folder.name == active})
    # By the time each card says it was made: by name, "mnist-cnn-more-third-20261126" came
    # before "mnist-cnn-20261127-090153", a day newer (a card without a time goes last).
    cards.sort(key=lambda card: (str(card.get("created") or ""), card["version"]), reverse=True)
    return cards


def committed_version(directory: Path | None = None) -> str | None:
    """The committed model named by `COMMITTED` (None if there is no such file or folder)."""
    directory = directory or models_dir()
    try:
        version = check_version((directory / COMMITTED).read_text().strip())
    except (OSError, ValueError):
        return None
    return version if (directory / version / CARD).is_file() else None


def promoted_versions(directory: Path | None = None) -> list[str]:
    """Every version that was made active here, oldest first (repeats kept)."""
    return _read_versions((directory or models_dir()) / PROMOTED)


def active_version(directory: Path | None = None, required: bool = True) -> str | None:
    """Name of the active model version.

    The ACTIVE pointer names it. A directory where nothing was ever promoted (no ACTIVE and
    no PROMOTED log: a fresh clone) serves its committed model. A pointer that is missing
    after a promotion, unreadable or dangling is an error (or None when not `required`):
    the loader then serves the last promoted model and says so.
    """
    directory = directory or models_dir()
    pointer = directory / POINTER
    try:
        version = check_version(pointer.read_text().strip())
    except (OSError, ValueError):
        if not pointer.exists() and not (directory / PROMOTED).exists():
            committed = committed_version(directory)
            if committed is not None:
                return committed
        if required:
            raise ModelError(f"no valid active-model pointer ({POINTER} is missing or unreadable)") from None
        return None
    if not (directory / version).is_dir():
        if required:
            raise ModelError(f"the active model {version!r} has no folder")
        return None
    return version


def write_atomically(path: Path, text: str) -> None:
    # Write a temporary file in the same folder, flush it to disk, then rename it over the
    # target: readers see the old content or the new one, never a half-written file.
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp makes the file readable by its owner only: keep the mode the file had (other
        # replicas, running as other users, read the shared models folder), else rw-r--r--.
        os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def previous_versions(directory: Path | None = None) -> list[str]:
    """Versions that were active before, oldest first (the rollback history)."""
    return _history(directory or models_dir())


def _history(directory: Path) -> list[str]:
    return _read_versions(directory / HISTORY)


def _read_versions(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text().split()
                if VERSION_PATTERN.match(line) and line not in RESERVED]
    except OSError:
        return []


def _log_promotion(directory: Path, version: str) -> None:
    promoted = (promoted_versions(directory) + [version])[-PROMOTED_KEPT:]
    write_atomically(directory / PROMOTED, "".join(line + "\n" for line in promoted))


def rollback_target(directory: Path | None = None) -> str | None:
    """The version `rollback` would re-activate, or None when there is nothing to roll back to."""
    directory = directory or models_dir()
    active = active_version(directory, required=False)
    for candidate in reversed(_history(directory)):
        if candidate != active and (directory / candidate / CARD).is_file():
            return candidate
    return None


def serving_versions(directory: Path | None = None) -> list[str]:
    """Promoted versions that may be served if the active one cannot be, best first.

    The last promoted versions (newest first), then the earlier active ones of the rollback
    history, then the committed model. Never a candidate that nobody promoted.
    """
    directory = directory or models_dir()
    ordered = []
    for version in [*reversed(promoted_versions(directory)), *reversed(_history(directory)),
                    committed_version(directory)]:
        if version and version not in ordered and (directory / version).is_dir():
            ordered.append(version)
    return ordered


def serving_key(directory: Path | None = None) -> tuple:
    """Changes whenever what should be served may have changed: the pointer files and the
    active model's files (size and modification time). A cache of the loaded model keyed
    by it picks up a promotion, a repaired pointer or a repaired model file at once."""
    directory = Path(directory or models_dir())
    active = active_version(directory, required=False)
    watched = [directory / POINTER, directory / PROMOTED]
    if active:
        watched += [directory / active / name for name in (CARD, TFLITE_FILE, KERAS_FILE)]

    def stamp(path: Path):
        try:
            status = path.stat()
        except OSError:
            return None
        return status.st_mtime_ns, status.st_size

    return (str(directory), active, *(stamp(path) for path in watched))


def set_active(version: str, directory: Path | None = None) -> None:
    """Make `version` the active model (atomic), remembering the previous one for rollback."""
    directory = directory or models_dir()
    folder = version_path(version, directory)
    if not (folder / CARD).is_file():
        raise ModelError(f"{version}: not a complete model folder")
    previous = active_version(directory, required=False)
    if previous == version and (directory / POINTER).exists():
        return
    if previous and previous != version:
        write_atomically(directory / HISTORY, "\n".join(_history(directory) + [previous]) + "\n")
    _log_promotion(directory, version)
    write_atomically(directory / POINTER, version + "\n")


def rollback(directory: Path | None = None) -> str:
    """Re-activate the most recent previously active model still present; return its name."""
    directory = directory or models_dir()
    history = _history(directory)
    while history:
        candidate = history.pop()
        if (directory / candidate / CARD).is_file() and candidate != active_version(directory, False):
            _log_promotion(directory, candidate)
            write_atomically(directory / POINTER, candidate + "\n")
            write_atomically(directory / HISTORY, "".join(h + "\n" for h in history))
            return candidate
    raise ModelError("there is no earlier model to roll back to")


def delete_model(version: str, directory: Path | None = None) -> None:
    """Delete a model folder; never the active one, nor the committed one."""
    directory = directory or models_dir()
    folder = version_path(version, directory)
    if version == active_version(directory, required=False):
        raise ModelError(f"{version} is the active model and cannot be deleted")
    if version == committed_version(directory):
        raise ModelError(f"{version} is the committed model (the last fallback) and cannot be deleted")
    if not folder.is_dir():
        raise ModelError(f"{version}: no such model")
    shutil.rmtree(folder)


def export_tflite(model, features: bool = True, half: bool = False) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer for LiteRT serving.

    With `half` the weights are stored as float16 (half the file; the runtime computes in float32
    as before, the weights rounded to float16 once).

    With `features`, a model whose last layer is "probabilities" outputs those probabilities
    followed by what that layer reads (the penultimate features, which personal adaptation
    compares examples by) as one row: LiteRT serving reads the first columns as the answer.
    """
    import keras
    import tensorflow as tf

    if features and model.layers[-1].name == "probabilities":
        joined = keras.layers.Concatenate(name="probabilities_and_features")(
            [model.outputs[0], model.layers[-1].input])
        model = keras.Model(model.inputs, joined, name=model.name)

    # from_keras_model freezes the weights into the file (a hand-made concrete function
    # left them as uninitialised resources and the interpreter returned NaN).
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if half:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def inference_copy(model):
    """The same layers as an uncompiled model, so saving leaves the optimizer state out."""
    import keras

    return keras.Model(model.inputs, model.outputs, name=model.name)


def save_model(model, card: dict, version: str | None = None, directory: Path | None = None,
               half: bool = False) -> Path:
    """Write a model folder (.keras, .tflite, card with file sizes) atomically; return it.

    With `half` the .tflite stores float16 weights (`export_tflite`), and the card says so."""
    directory = directory or models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    version = check_version(version or new_version_name())
    final = directory / version
    if final.exists():
        raise ModelError(f"{version} already exists")
    building = Path(tempfile.mkdtemp(dir=directory, prefix=f".{version}."))
    try:
        building.chmod(0o755)  # mkdtemp makes it private; a model folder is for everyone to read
        model = inference_copy(model)
        model.save(building / KERAS_FILE)
        (building / TFLITE_FILE).write_bytes(export_tflite(model, half=half))
        files = {name: (building / name).stat().st_size for name in (KERAS_FILE, TFLITE_FILE)}
        card = {**card, "version": version, "files": files}
        if half:
            card["tflite_weights"] = "float16"
        (building / CARD).write_text(json.dumps(card, indent=2) + "\n")
        os.replace(building, final)  # the folder appears complete or not at all
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return final
