"""Promotion, shared by the Models and Retrain pages: a candidate that is worse than the active
model on some digit is promoted only after a confirmation that names the loss (layout only)."""

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from digitrec import DigitrecError, registry
from digitrec import card as model_card
from digitrec.config import CLASS_TOLERANCE
from digitrec.evaluate import CANVAS, MNIST_TEST, ClassLoss, class_losses, evaluate_version, reports_from_card
from digitrec.segment import counted

MESSAGE = "promotion_message"


@st.cache_data(show_spinner="Comparing with the active model on MNIST test and held-out canvas drawings…",
               max_entries=16)
def _reports(folder: str, stamp: tuple) -> dict:
    """Per-class reports of a model folder as it is served; cached while its files are unchanged."""
    return evaluate_version(folder)["reports"]


def _stamp(folder: Path) -> tuple:
    try:
        status = (folder / registry.TFLITE_FILE).stat()
    except OSError:
        return ()
    return status.st_mtime_ns, status.st_size


def reports(version: str, directory: Path) -> dict:
    """Per-class reports of a version: evaluated as served, else the figures in its card."""
    folder = registry.version_path(version, directory)
    try:
        evaluated = _reports(str(folder), _stamp(folder))
    except DigitrecError:
        evaluated = {}
    return {**reports_from_card(model_card.read(folder)), **evaluated}


def losses_against_active(version: str, directory: Path) -> tuple[list[ClassLoss], str | None]:
    """The digits on which `version` is worse than the active model, and the active version."""
    active = registry.active_version(directory, required=False)
    if active is None or active == version:
        return [], active
    try:
        return class_losses(reports(version, directory), reports(active, directory)), active
    except DigitrecError:  # a card that cannot be read: nothing to compare
        return [], active


def loss_table(losses: list[ClassLoss]) -> list[dict]:
    """Rows for st.dataframe, one per digit, worst first: "this model / active model" accuracy
    on MNIST test and on the held-out canvas drawings ("not worse" where it is not)."""
    digits = sorted({loss.digit for loss in losses},
                    key=lambda digit: -max(loss.points for loss in losses if loss.digit == digit))
    rows = []
    for digit in digits:
        row = {"digit": digit}
        for name, label in ((MNIST_TEST, "MNIST %"), (CANVAS, "canvas %")):
            loss = next((item for item in losses if item.digit == digit and item.dataset == name), None)
            row[label] = f"{100 * loss.candidate:.1f} / {100 * loss.active:.1f}" if loss else "not worse"
        rows.append(row)
    return rows


def loss_summary(version: str, active: str, losses: list[ClassLoss]) -> str:
    """One sentence naming the digits a candidate is worse on."""
    digits = sorted({loss.digit for loss in losses})
    named = ", ".join(str(d) for d in digits[:-1]) + (" and " if len(digits) > 1 else "") + str(digits[-1])
    worst = losses[0]
    return (f"**{version}** reads {'digit' if len(digits) == 1 else 'digits'} **{named}** worse than the "
            f"active model **{active}** (more than {100 * CLASS_TOLERANCE:.0f} points below it); worst: "
            f"{worst.digit} on {worst.dataset}, {100 * worst.candidate:.1f}% instead of "
            f"{100 * worst.active:.1f}%.")


PENDING = "pending_promotion"  # the version waiting for a confirmation


def _promote(version: str, promote: Callable[[], object]) -> None:
    try:
        promote()
    except (DigitrecError, ValueError) as error:
        st.error(str(error))
        return
    st.session_state.pop(PENDING, None)
    st.session_state[MESSAGE] = f"{version} is now active: every Draw page uses it from its next rerun."
    st.rerun()


def _forget_pending() -> None:
    st.session_state.pop(PENDING, None)


@st.dialog("Promote a model that reads digits worse?", width="large", on_dismiss=_forget_pending)
def _confirm(version: str, active: str, losses: list[ClassLoss], promote: Callable[[], object]) -> None:
    st.warning(loss_summary(version, active, losses), icon=":material/warning:")
    st.dataframe(loss_table(losses), hide_index=True, width="stretch")
    st.caption("Accuracy per digit: this model / the active model, on MNIST test and on pen digits "
               "of writers never trained on, drawn on a canvas.")
    st.caption(advice(version))
    row = st.container(horizontal=True)
    if row.button("Cancel", type="primary", key="cancel_promotion"):  # the safe choice stands out
        _forget_pending()
        st.rerun()
    if row.button("Promote anyway", key="confirm_promotion"):
        _promote(version, promote)


def promote_clicked(version: str, directory: Path, promote: Callable[[], object],
                    losses: list[ClassLoss] | None = None) -> None:
    """Call when a Promote button was clicked: promotes at once, or, when `version` is worse
    than the active model on some digit (`losses`, computed here if not given), leaves it
    to `ask_pending` to ask first in a dialog."""
    active = registry.active_version(directory, required=False)
    if losses is None:
        losses, active = losses_against_active(version, directory)
    if losses:
        st.session_state[PENDING] = {"version": version, "active": active, "losses": losses}
    else:
        _promote(version, promote)


def advice(version: str) -> str:
    """What the model trained on, from its card, then the advice: the visitor judges the cause (two
    saved samples did not cost a 1-epoch trial on 2% of MNIST its 9s; the short training did)."""
    try:
        training = model_card.read(registry.version_path(version)).training
    except DigitrecError:
        training = None
    said = []
    if training is not None and training.examples:
        epochs = f", for {counted(training.epochs_done, 'epoch')}" if training.epochs_done else ""
        said.append(f"It trained on {training.describe_examples()}{epochs}.")
    if training is not None and training.used_samples:
        said.append("Saved samples can teach a model wrong digits; so can too short a training.")
    return " ".join(said + ["Promote it only if you know why it lost these."])


def ask_pending(promote_for: Callable[[str], Callable[[], object]]) -> None:
    """Call on every run: shows the confirmation dialog while a promotion waits for one."""
    pending = st.session_state.get(PENDING)
    if pending:
        _confirm(pending["version"], pending["active"], pending["losses"], promote_for(pending["version"]))


def show_message() -> None:
    """The success message of a promotion made on the previous run."""
    if MESSAGE in st.session_state:
        st.success(st.session_state.pop(MESSAGE))
