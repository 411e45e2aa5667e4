"""Registry: model folders, the active pointer, promote / rollback / delete, atomicity."""

import json
import os

import pytest

from digitrec import registry
from digitrec.errors import ModelError


def make_folder(directory, version, accuracy=0.99):
    folder = directory / version
    folder.mkdir(parents=True)
    (folder / registry.CARD).write_text(json.dumps({"metrics": {"mnist_test_accuracy": accuracy}}))
    (folder / registry.TFLITE_FILE).write_bytes(b"not used here")
    return folder


@pytest.fixture()
def directory(tmp_path):
    for name in ("model-a", "model-b", "model-c"):
        make_folder(tmp_path, name)
    (tmp_path / registry.POINTER).write_text("model-a\n")
    return tmp_path


def test_list_marks_the_active_model(directory):
    cards = registry.list_models(directory)
    assert [c["version"] for c in cards] == ["model-c", "model-b", "model-a"]
    assert [c["active"] for c in cards] == [False, False, True]


def test_the_list_is_newest_first_by_when_each_was_made(tmp_path):
    # A new user's check: the committed "mnist-cnn-more-third-20261126" was listed (and chosen on
    # the Models page) before the candidate trained the next day, "mnist-cnn-20261127-090153".
    for version, created in (("mnist-cnn-more-third-20261126", "2026-11-26T15:59:55+00:00"),
                             ("mnist-cnn-20261127-090153", "2026-11-27T09:01:53+00:00")):
        folder = make_folder(tmp_path, version)
        card = json.loads((folder / registry.CARD).read_text())
        (folder / registry.CARD).write_text(json.dumps({**card, "created": created}))
    make_folder(tmp_path, "zz-no-time")
    assert [c["version"] for c in registry.list_models(tmp_path)] == [
        "mnist-cnn-20261127-090153", "mnist-cnn-more-third-20261126", "zz-no-time"]


def test_promote_and_rollback(directory):
    registry.set_active("model-b", directory)
    registry.set_active("model-c", directory)
    assert registry.active_version(directory) == "model-c"
    assert registry.rollback(directory) == "model-b"
    assert registry.rollback(directory) == "model-a"
    with pytest.raises(ModelError, match="no earlier model"):
        registry.rollback(directory)


def test_rollback_skips_deleted_versions(directory):
    registry.set_active("model-b", directory)
    registry.set_active("model-c", directory)
    registry.delete_model("model-b", directory)
    assert registry.rollback(directory) == "model-a"


def test_the_active_model_cannot_be_deleted(directory):
    with pytest.raises(ModelError, match="active"):
        registry.delete_model("model-a", directory)
    registry.delete_model("model-b", directory)
    assert not (directory / "model-b").exists()


@pytest.mark.parametrize("name", ["../models", "/etc", "a/b", ".hidden", "", "ACTIVE", "x" * 65, None])
def test_unsafe_version_names_are_rejected(directory, name):
    with pytest.raises(ValueError):
        registry.version_path(name, directory)
    with pytest.raises(ValueError):
        registry.delete_model(name, directory)


def test_promote_is_atomic_when_the_rename_fails(directory, monkeypatch):
    """A crash between writing the new pointer and renaming it leaves the old one intact."""
    def crash(source, target):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        registry.set_active("model-b", directory)
    monkeypatch.undo()
    assert registry.active_version(directory) == "model-a"
    assert (directory / registry.POINTER).read_text() == "model-a\n"
    assert not [p for p in directory.iterdir() if p.name.startswith(".ACTIVE")]  # no debris


def test_missing_or_dangling_pointer(directory):
    (directory / registry.POINTER).write_text("model-zzz\n")
    with pytest.raises(ModelError, match="no folder"):
        registry.active_version(directory)
    (directory / registry.POINTER).unlink()
    with pytest.raises(ModelError, match="pointer"):
        registry.active_version(directory)
    assert registry.active_version(directory, required=False) is None


def test_incomplete_folder_cannot_be_promoted(directory):
    (directory / "half").mkdir()
    with pytest.raises(ModelError, match="not a complete model"):
        registry.set_active("half", directory)


def test_env_directory_is_seeded_from_committed_models(tmp_path, monkeypatch, committed_model):
    target = tmp_path / "writable"
    monkeypatch.setenv("DIGITREC_MODELS_DIR", str(target))
    assert registry.models_dir() == target
    assert registry.active_version(target) == committed_model.name
    assert (target / committed_model.name / registry.TFLITE_FILE).is_file()


def test_models_home_says_which_folder_models_dir_chose(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_MODELS_DIR", str(tmp_path / "configured"))
    assert registry.models_home() == registry.ModelsHome.CONFIGURED
    monkeypatch.delenv("DIGITREC_MODELS_DIR")
    monkeypatch.setattr(registry, "REPO_MODELS", tmp_path / "repo" / "models")
    (tmp_path / "repo" / "models").mkdir(parents=True)
    assert registry.models_home() == registry.ModelsHome.REPOSITORY
    monkeypatch.setattr(registry.os, "access", lambda path, mode: False)  # a read-only host
    monkeypatch.setattr(registry, "_seed_from_repo", lambda directory: None)
    assert registry.models_home() == registry.ModelsHome.TEMPORARY


def test_save_model_round_trip(tiny_model):
    card = registry.read_card(tiny_model)
    assert card["version"] == "tiny"
    for name in (registry.KERAS_FILE, registry.TFLITE_FILE):
        assert (tiny_model / name).stat().st_size == card["files"][name]
    assert card["training"]["config"]["architecture"] == "shallow"  # "fast", by its current name
    assert len(card["metrics"]["mnist_test_per_class"]) == 10
    assert set(card["data_checksums"]["mnist"]) == {
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert {"tensorflow", "keras", "numpy", "python"} <= set(card["versions"])
    with pytest.raises(ModelError, match="already exists"):
        registry.save_model(None, {}, "tiny", tiny_model.parent)


def test_a_lost_pointer_is_not_silently_reset(tmp_path, monkeypatch, committed_model):
    target = tmp_path / "writable"
    make_folder(target, "trained-in-browser")
    monkeypatch.setenv("DIGITREC_MODELS_DIR", str(target))
    assert registry.models_dir() == target
    assert not (target / registry.POINTER).exists()  # reported by the loader, not re-pointed
    assert not (target / committed_model.name).exists()


def test_without_any_pointer_the_committed_model_is_active(tmp_path):
    make_folder(tmp_path, "committed-1")
    make_folder(tmp_path, "zz-newer-candidate")
    (tmp_path / registry.COMMITTED).write_text("committed-1\n")
    assert registry.active_version(tmp_path) == "committed-1"
    assert registry.serving_versions(tmp_path) == ["committed-1"]
    with pytest.raises(ModelError, match="committed"):
        registry.delete_model("committed-1", tmp_path)
    registry.set_active("zz-newer-candidate", tmp_path)
    (tmp_path / registry.POINTER).unlink()  # lost after a promotion: an error, not the default
    assert registry.active_version(tmp_path, required=False) is None
    assert registry.serving_versions(tmp_path) == ["zz-newer-candidate", "committed-1"]


def test_promotions_are_logged_and_serving_skips_candidates(directory):
    registry.set_active("model-b", directory)
    registry.rollback(directory)
    assert registry.promoted_versions(directory) == ["model-b", "model-a"]
    assert "model-c" not in registry.serving_versions(directory)  # never promoted


def test_rollback_target_names_what_rollback_would_do(directory):
    assert registry.rollback_target(directory) is None  # nothing was active before
    registry.set_active("model-b", directory)
    assert registry.rollback_target(directory) == "model-a"
    registry.delete_model("model-a", directory)
    assert registry.rollback_target(directory) is None


def test_serving_key_changes_when_the_active_model_file_is_repaired(directory):
    registry.set_active("model-b", directory)
    before = registry.serving_key(directory)
    assert registry.serving_key(directory) == before
    tflite = directory / "model-b" / registry.TFLITE_FILE
    tflite.write_bytes(b"repaired, a different size")
    assert registry.serving_key(directory) != before


def test_cards_and_pointers_stay_readable_by_other_users(tmp_path):
    """A shared models folder is read by replicas that may run as other users: a rewritten card or
    pointer keeps its mode, and a new one is rw-r--r-- (mkstemp alone made them owner-only)."""
    import stat

    folder = tmp_path / "m1"
    folder.mkdir()
    registry.write_card(folder, {"architecture": "deep"})
    assert stat.S_IMODE((folder / registry.CARD).stat().st_mode) == 0o644
    (folder / registry.CARD).chmod(0o664)
    registry.write_card(folder, {"architecture": "shallow"})
    assert stat.S_IMODE((folder / registry.CARD).stat().st_mode) == 0o664
    registry.set_active("m1", tmp_path)
    assert stat.S_IMODE((tmp_path / "ACTIVE").stat().st_mode) == 0o644
