"""Samples page: the drawings people saved with their true labels, which feed retraining."""

import uuid

import streamlit as st

from digitrec import DigitrecError, admin
from digitrec.views import gallery_image, label_count_chart, local_time, visitor_timezone

from app_pages import personal_panel
from app_pages.common import MY_SAMPLES, admin_password, store

UNTAUGHT = "sample_untaught"  # the sample just deleted whose example this tab's answers dropped
PAGE_SIZE = 24
CARD_WIDTH = 140  # px: each picture (the drawing beside the model input), its label and Delete

st.title("Saved samples", icon=":material/photo_library:")
# The database's path is not for visitors.
st.caption("Drawings confirmed or corrected on the Draw page, each with its true digit")

if st.session_state.get(UNTAUGHT) is not None:
    st.success(f"Sample #{st.session_state.pop(UNTAUGHT)} deleted, and your answers on the Draw page "
               "no longer learn from it.", icon=":material/check:")

samples = store()
try:
    counts = samples.count_by_label()
except DigitrecError as error:
    st.error(f"The samples database cannot be read: {error}")
    st.stop()

total = sum(counts.values())
if total == 0:
    st.info("No samples yet. On the Draw page, answer **Right?** under a prediction to save one.")
    st.stop()

summary, chart = st.columns([1, 3])
summary.metric("Samples", total)
with summary:
    # Made when clicked, not on every view: with thousands of samples the two exports are tens
    # of MB, and a cache of them per count of samples held that much for every save and delete.
    st.download_button("Download .npz (x, y)", samples.export_npz, "digitrec-samples.npz",
                       mime="application/octet-stream", on_click="ignore")
    st.download_button("Download CSV", samples.export_csv, "digitrec-samples.csv", mime="text/csv",
                       on_click="ignore")
chart.altair_chart(label_count_chart(counts), width="stretch")

choice = st.segmented_control("Show", ["all"] + [str(d) for d in range(10)], default="all",
                              key="sample_filter") or "all"
label = None if choice == "all" else int(choice)
matching = total if label is None else counts[label]
pages = max(1, -(-matching // PAGE_SIZE))
page = st.number_input("Page", 1, pages, 1, key=f"page-{choice}") if pages > 1 else 1
shown = samples.list(label=label, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
if matching == 0:
    st.info(f"No samples saved as **{label}** yet.")
    st.stop()
zone, zone_name = visitor_timezone(st.context.timezone, st.context.timezone_offset)
st.caption(f"{len(shown)} of {matching}, newest first · page {page} of {pages} · "
           f"each: the drawing as saved, then what the model sees · times in {zone_name}")

# On a public server anyone could delete anyone's samples: with an admin password set, a visitor
# deletes only what this visit saved; the rest asks for the password.
configured = admin_password()
mine = st.session_state.get(MY_SAMPLES, set())
password = None
if configured:
    password = st.text_input("Admin password (to delete samples others saved)", type="password",
                             key="samples_admin_password")


def may_delete(sample_id: int) -> bool:
    return not configured or sample_id in mine or bool(password)


def ask_delete(sample_id: int):
    st.session_state.pending_sample_delete = sample_id


# One row that wraps, newest first: as many as fit side by side (4 on a 1280 px desktop, 2 on a phone,
# where st.columns had stacked them one per row).
gallery = st.container(horizontal=True, gap="medium")
for index, sample in enumerate(shown):
    with gallery.container(width=CARD_WIDTH, key=f"sample-card-{index}"):  # key: its CSS class
        try:  # only the drawings of the page shown are loaded
            drawing = samples.drawing(sample.id)
        except DigitrecError:
            drawing = None  # the model input is still shown
        st.image(gallery_image(sample.model_input, drawing))
        guessed = "—" if sample.predicted is None else sample.predicted
        st.markdown(f"**{sample.label}** (model read {guessed})  \n"
                    f"#{sample.id} · {local_time(sample.created, zone)}")
        # Keyed by place on the page, not by sample id: Streamlit keeps every widget id a
        # session registers, so one per sample ever shown grew a long session's memory.
        allowed = may_delete(sample.id)
        st.button("Delete", key=f"delete-{index}", on_click=ask_delete, args=(sample.id,),
                  disabled=not allowed,
                  help=None if allowed else "Saved by someone else: the admin password deletes it")


def forget_delete():
    st.session_state.pop("pending_sample_delete", None)


@st.dialog("Delete a saved sample?", on_dismiss=forget_delete)
def confirm_delete(sample_id):
    """Deleting removes the drawing and its label for good (and from future trainings): ask first."""
    sample = samples.get(sample_id)
    if sample is None:
        forget_delete()
        st.rerun()
    try:
        drawing = samples.drawing(sample.id)
    except DigitrecError:
        drawing = None
    st.image(gallery_image(sample.model_input, drawing))
    st.markdown(f"Delete sample **#{sample.id}**, saved as **{sample.label}**? This cannot be undone.")
    row = st.container(horizontal=True)
    if row.button(f"Delete #{sample.id}", type="primary", key="confirm_sample_delete"):
        try:
            if sample.id not in mine:  # checked here too: a crafted click reaches this dialog
                admin.authorize(password, configured,
                                st.session_state.setdefault("client_id", uuid.uuid4().hex))
            samples.delete(sample.id)
        except DigitrecError as error:
            st.error(str(error))
        else:
            if personal_panel.forget_sample(sample.id):  # it no longer changes your answers either
                st.session_state[UNTAUGHT] = sample.id
            forget_delete()
            st.rerun()
    if row.button("Cancel", key="cancel_sample_delete"):
        forget_delete()
        st.rerun()


if st.session_state.get("pending_sample_delete") is not None:
    confirm_delete(st.session_state.pending_sample_delete)
