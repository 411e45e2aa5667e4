"""Models page: every trained version with its card; promote, roll back, download, delete."""

import uuid

import streamlit as st

from digitrec import DigitrecError, admin, registry
from digitrec.card import list_cards
from digitrec.views import confusion_chart

from app_pages.common import admin_password, recognizer
from app_pages.promotion import ask_pending, promote_clicked, show_message

# Where the models are kept, in words an admin can act on.
HOME_NOTES = {
    registry.ModelsHome.REPOSITORY: "Models from the app's own models/ folder.",
    registry.ModelsHome.CONFIGURED: "Models from the folder this server is set to use (DIGITREC_MODELS_DIR).",
    registry.ModelsHome.TEMPORARY: ("The app's own folder cannot be written on this server, so models "
                                    "trained here are kept in a temporary folder: they last until the "
                                    "server restarts. Download a model you want to keep."),
}

st.title("Model versions", icon=":material/deployed_code:")

directory = registry.models_dir()
configured = admin_password()
# The folder's path is not shown: it tells a visitor about the server, and helps nobody here.
st.caption(HOME_NOTES[registry.models_home()])
if configured:
    st.info("An admin password is set: promote, roll back and delete ask for it.", icon=":material/lock:")
else:
    st.warning("No admin password is configured (local use): anyone with this page can promote, "
               "roll back and delete. Set `admin_password` in secrets to guard them.",
               icon=":material/lock_open:")

try:
    cards = list_cards(directory)
except OSError as error:
    st.error(f"The model folder cannot be read ({error.strerror or type(error).__name__}).")
    st.stop()
if not cards:
    st.error("No models in the model folder. Train one with `python -m digitrec train --activate`.")
    st.stop()


def percent(value):
    """A share as a percentage with two decimals, None stays None."""
    return None if value is None else round(100 * value, 2)


active = registry.active_version(directory, required=False)
try:
    served = recognizer().version  # warns when the active model cannot be served
except DigitrecError as error:
    st.error(f"No promoted model can be served: {error}")
    served = None
if served is not None and served != active:
    st.warning(f"The app is serving **{served}**, the last promoted model that loads, not the active one. "
               "Promote a model (or roll back) to set the active model again.", icon=":material/warning:")
committed = registry.committed_version(directory)
promoted = set(registry.promoted_versions(directory)) | set(registry.previous_versions(directory))


def status(version):
    """What a version is to the app: active, served instead, committed, promoted before, candidate."""
    words = ["active" if version == active else "serving" if version == served else None,
             "committed" if version == committed else None,
             "promoted before" if version in promoted and version not in (active, served) else None]
    return ", ".join(word for word in words if word) or "candidate"


# The table's toolbar (show, download, search, full screen) rises above it on hover or a tap: with
# this room it no longer covers the admin-password notice (a new user's phone check).
st.space(24)
# Column widths add up to under the 820 px a 1280 px window gives the page: every column in sight.
st.dataframe(
    [{"version": card.version, "status": status(card.version),
      "MNIST test %": percent(card.metrics.mnist_test_accuracy),
      "canvas %": percent(card.metrics.canvas_accuracy),
      "created": card.created_text, "architecture": card.network, "parameters": card.parameters,
      "size KB": round(card.size_bytes / 1024)}
     for card in cards],
    hide_index=True, width="stretch",
    column_config={
        "version": st.column_config.TextColumn(width=205),
        "status": st.column_config.TextColumn(width=122),
        "created": st.column_config.TextColumn("created (UTC)", width=122),
        "MNIST test %": st.column_config.NumberColumn("MNIST %", format="%.2f", width=68,
                                                      help="Accuracy on the 10,000 MNIST test digits"),
        "canvas %": st.column_config.NumberColumn(format="%.2f", width=72,
                                                  help="Accuracy on held-out pen digits drawn on a canvas"),
        "architecture": st.column_config.TextColumn("network", width=72,
                                                    help="deep ×2: the average of two deep networks"),
        "parameters": st.column_config.NumberColumn("params", format="compact", width=64),
        "size KB": st.column_config.NumberColumn("KB", width=56, help="Size of its model files"),
    },
)

versions = [card.version for card in cards]
chosen = st.selectbox("Model", versions, index=0, key="model_choice")
card = next(card for card in cards if card.version == chosen)
password = st.text_input("Admin password", type="password", key="admin_password") if configured else None
client = st.session_state.setdefault("client_id", uuid.uuid4().hex)  # wrong guesses are counted per session


def run_action(action, success):
    """Run a guarded action; on success rerun so the table shows the new state."""
    try:
        result = action()
    except (DigitrecError, ValueError) as error:
        st.error(str(error))
    else:
        st.session_state.models_message = success.format(result=result)
        st.rerun()


def forget_delete():
    st.session_state.pop("pending_delete", None)


@st.dialog("Delete a model?", on_dismiss=forget_delete)
def confirm_delete(version):
    """Deleting removes the model's files from the server: ask first."""
    st.markdown(f"Delete **{version}**? Its files are removed from the server; this cannot be undone.")
    row = st.container(horizontal=True)
    if row.button("Delete for good", type="primary", key="confirm_delete"):
        forget_delete()
        run_action(lambda: admin.delete(version, password, configured, directory, client),
                   f"Deleted {version}.")
    if row.button("Cancel", key="cancel_delete"):
        forget_delete()
        st.rerun()


def promote_for(version):
    return lambda: admin.promote(version, password, configured, directory, client)


if "models_message" in st.session_state:
    st.success(st.session_state.pop("models_message"))
show_message()

target = registry.rollback_target(directory)
actions = st.container(horizontal=True)
if actions.button("Promote to active", disabled=card.active,
                  help="Asks first if this model is worse than the active one on any digit"):
    forget_delete()  # one dialog at a time
    promote_clicked(chosen, directory, promote_for(chosen))
if actions.button("Roll back", disabled=target is None,
                  help=f"Re-activate {target}, the model that was active before" if target else
                  "Nothing to roll back to: no earlier active model is left"):
    run_action(lambda: admin.rollback(password, configured, directory, client), "Rolled back to {result}.")
if actions.button("Delete", disabled=chosen in (active, served, committed),
                  help="The active, the served and the committed model cannot be deleted"):
    st.session_state.pop("pending_promotion", None)  # one dialog at a time
    st.session_state.pending_delete = chosen
for file_name in (registry.KERAS_FILE, registry.TFLITE_FILE):
    path = registry.version_path(chosen, directory) / file_name
    if path.is_file():
        actions.download_button(f"Download {path.suffix}", path.read_bytes(),
                                file_name=f"{chosen}{path.suffix}", key=f"download-{file_name}",
                                on_click="ignore", icon=":material/download:")

ask_pending(promote_for)
if st.session_state.get("pending_delete") in versions:
    confirm_delete(st.session_state.pending_delete)

st.subheader(f"{chosen} ({status(chosen)})")
metrics = card.metrics
figures = st.columns(3)
figures[0].metric("MNIST test", f"{percent(metrics.mnist_test_accuracy)}%")
canvas = metrics.canvas_accuracy
figures[1].metric("Canvas-drawn pendigits", "—" if canvas is None else f"{percent(canvas)}%",
                  help=metrics.canvas_note)
figures[2].metric("Parameters", f"{card.parameters or 0:,}")
if card.training.examples:
    st.caption(f"Trained on {card.training.describe_examples()}.")
st.caption(f"Says \"not a digit\" with {card.not_digit_judge}.")
if card.confusion_mnist_test:
    st.altair_chart(confusion_chart(card.confusion_mnist_test))
with st.expander("Model card (JSON)"):
    st.json(card.raw, expanded=False)
