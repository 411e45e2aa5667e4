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


# ---- guessing is bounded (issue 8) ------------------------------------------------------

@pytest.fixture()
def clock(monkeypatch):
    """A fresh attempt counter on a clock the test moves."""
    now = [1000.0]
    monkeypatch.setattr(admin, "ATTEMPTS", admin.PasswordAttempts(clock=lambda: now[0]))
    return now


def test_a_session_is_locked_out_after_five_wrong_guesses(directory, clock):
    from digitrec.errors import TooManyAttemptsError
    from digitrec.limits import PASSWORD_FAILURES_PER_SESSION, PASSWORD_LOCKOUT_S

    for guess in range(PASSWORD_FAILURES_PER_SESSION):
        with pytest.raises(PermissionDeniedError, match="wrong"):
            admin.promote("model-b", f"guess{guess}", "s3cret", directory, client="visitor")
        clock[0] += 1
    with pytest.raises(TooManyAttemptsError, match="try again in 55 s"):  # even the right one
        admin.promote("model-b", "s3cret", "s3cret", directory, client="visitor")
    assert registry.active_version(directory) == "model-a"
    admin.promote("model-b", "s3cret", "s3cret", directory, client="admin")  # others are not
    clock[0] += PASSWORD_LOCKOUT_S
    admin.rollback("s3cret", "s3cret", directory, client="visitor")  # a minute later it works
    assert registry.active_version(directory) == "model-a"


def test_guesses_from_many_sessions_are_bounded_in_all(directory, clock):
    from digitrec.errors import TooManyAttemptsError
    from digitrec.limits import PASSWORD_FAILURES_PER_MINUTE

    for guess in range(PASSWORD_FAILURES_PER_MINUTE):  # one guess from each of many sessions
        with pytest.raises(PermissionDeniedError, match="wrong"):
            admin.promote("model-b", f"guess{guess}", "s3cret", directory, client=f"session{guess}")
    with pytest.raises(TooManyAttemptsError):
        admin.promote("model-b", "another", "s3cret", directory, client="fresh session")
    with pytest.raises(TooManyAttemptsError):
        admin.promote("model-b", "another", "s3cret", directory)  # no session named either
    clock[0] += 61
    admin.promote("model-b", "s3cret", "s3cret", directory, client="fresh session")


def test_an_empty_password_is_no_guess(directory, clock):
    for _ in range(50):
        with pytest.raises(PermissionDeniedError):
            admin.promote("model-b", "", "s3cret", directory, client="visitor")
    admin.promote("model-b", "s3cret", "s3cret", directory, client="visitor")


def test_remembered_sessions_are_bounded(clock):
    attempts = admin.PasswordAttempts(max_clients=10, in_all=10**6, clock=lambda: clock[0])
    for index in range(1000):
        attempts.failed(f"session{index}")
    assert len(attempts._clients) == 10
