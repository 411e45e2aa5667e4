"""Admin guard: promote, rollback and delete need the password when one is set."""

import json

import pytest

from digitrec import admin, registry
from digitrec.errors import PermissionDeniedError


@pytest.fixture()
def directory(tmp_path):
    for name in ("model-a", "model-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / registry.CARD).write_text(json.dumps({"metrics": {}}))
    (tmp_path / registry.POINTER).write_text("model-a\n")
    return tmp_path


def test_open_without_a_configured_password(directory, monkeypatch):
    monkeypatch.delenv(admin.PASSWORD_VARIABLE, raising=False)
    configured = admin.configured_password(None)
    assert configured is None
    admin.promote("model-b", None, configured, directory)
    assert admin.rollback(None, configured, directory) == "model-a"
    admin.delete("model-b", None, configured, directory)
    assert not (directory / "model-b").exists()


@pytest.mark.parametrize("given", [None, "", "wrong", "s3cre", "s3cret "])
def test_every_action_refuses_a_wrong_password(directory, given):
    for action in (lambda: admin.promote("model-b", given, "s3cret", directory),
                   lambda: admin.rollback(given, "s3cret", directory),
                   lambda: admin.delete("model-b", given, "s3cret", directory)):
        with pytest.raises(PermissionDeniedError):
            action()
    assert registry.active_version(directory) == "model-a" and (directory / "model-b").exists()


def test_the_right_password_works(directory):
    admin.promote("model-b", "s3cret", "s3cret", directory)
    assert registry.active_version(directory) == "model-b"


def test_a_numeric_secret_is_compared_as_text(directory, monkeypatch):
    monkeypatch.delenv(admin.PASSWORD_VARIABLE, raising=False)
    configured = admin.configured_password(12345)  # TOML: admin_password = 12345
    admin.promote("model-b", "12345", configured, directory)
    assert registry.active_version(directory) == "model-b"


def test_env_variable_is_used_when_no_secret(monkeypatch):
    monkeypatch.setenv(admin.PASSWORD_VARIABLE, "from-env")
    assert admin.configured_password(None) == "from-env"
    assert admin.configured_password("from-secrets") == "from-secrets"
