"""Models page: every trained version with its card; promote, roll back, download, delete."""

import uuid

import streamlit as st

from digitrec import DigitrecError, admin, registry
from digitrec.views import confusion_chart
from app_pages.common import admin_password

st.title("Model versions", icon=":material/deployed_code:")

directory = registry.models_dir()
configured = admin_password()
# The folder's path is not shown: it tells a visitor about the server, and helps nobody here.
st.caption("Models from the app's own models/ folder" if directory == registry.REPO_MODELS else
           "Models from a writable copy (the app's own models/ folder is read-only or overridden)")
if configured:
    st.info("An admin password is set: promote, roll back and delete ask for it.", icon=":material/lock:")
else:
    st.warning("No admin password is configured (local use): anyone with this page can promote, "
               "roll back and delete. Set `admin_password` in secrets to guard them.", icon=":material/lock_open:")

try:
    cards = registry.list_models(directory)
except OSError as error:
    st.error(f"The model folder cannot be read ({error.strerror or type(error).__name__}).")
    st.stop()
if not cards:
    st.error("No models in the model folder. Train one with `python -m digitrec train --activate`.")
    st.stop()


def percent(value):
    """A share as a percentage with two decimals, None stays None."""
    return None if value is None else round(100 * value, 2)


st.dataframe(
    [{"active": bool(card["active"]), "version": card["version"],
      "created": card.get("created", "")[:16].replace("T", " "),
      "MNIST test %": percent(card.get("metrics", {}).get("mnist_test_accuracy")),
      "canvas %": percent(card.get("metrics", {}).get("pendigits_canvas_accuracy")),
      "architecture": card.get("architecture"), "parameters": card.get("parameters"),
      "size KB": round(sum(card.get("files", {}).values()) / 1024),
      "data": ", ".join(f"{k} {v}" for k, v in card.get("training", {}).get("examples", {}).items()),
      "epochs": card.get("training", {}).get("epochs_done")}
     for card in cards],
    hide_index=True, width="stretch",
)

versions = [card["version"] for card in cards]
chosen = st.selectbox("Model", versions, index=0, key="model_choice")
card = next(card for card in cards if card["version"] == chosen)
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


if "models_message" in st.session_state:
    st.success(st.session_state.pop("models_message"))


actions = st.columns(4)
if actions[0].button("Promote to active", disabled=card["active"], width="stretch"):
    run_action(lambda: admin.promote(chosen, password, configured, directory, client),
               f"{chosen} is now active: every Draw page uses it from its next rerun.")
if actions[1].button("Roll back", width="stretch",
                     help="Re-activate the model that was active before the current one"):
    run_action(lambda: admin.rollback(password, configured, directory, client), "Rolled back to {result}.")
if actions[2].button("Delete", disabled=card["active"], width="stretch",
                     help="The active model cannot be deleted"):
    run_action(lambda: admin.delete(chosen, password, configured, directory, client), f"Deleted {chosen}.")
with actions[3]:
    for file_name in (registry.KERAS_FILE, registry.TFLITE_FILE):
        path = registry.version_path(chosen, directory) / file_name
        if path.is_file():
            st.download_button(f"Download {path.suffix}", path.read_bytes(),
                               file_name=f"{chosen}{path.suffix}", key=f"download-{file_name}")

st.subheader(f"{chosen}{' (active)' if card['active'] else ''}")
metrics = card.get("metrics", {})
figures = st.columns(3)
figures[0].metric("MNIST test", f"{percent(metrics.get('mnist_test_accuracy'))}%")
canvas = metrics.get("pendigits_canvas_accuracy")
figures[1].metric("Canvas-drawn pendigits", "—" if canvas is None else f"{percent(canvas)}%",
                  help=metrics.get("pendigits_canvas_note"))
figures[2].metric("Parameters", f"{card.get('parameters', 0):,}")
if card.get("confusion_mnist_test"):
    st.altair_chart(confusion_chart(card["confusion_mnist_test"]))
with st.expander("Model card (JSON)"):
    st.json(card, expanded=False)
