"""The Draw page's personal adaptation: this session's examples, an optional profile name, the switch.

Layout and session state only; the adaptation itself is `digitrec.personal`.
"""

import io

import numpy as np
import streamlit as st
from PIL import Image

from digitrec import DigitrecError
from digitrec.limits import MAX_PERSONAL_EXAMPLES
from digitrec.segment import counted

from app_pages.common import store

STATE = "personal"  # this session's PersonalRecognizer (for one model version)
ITEMS = "personal_items"  # its examples as (drawing PNG, label, strokes), to re-read after a promotion
PROFILE = "personal_profile"  # the profile name the examples are also kept under, if any
SWITCH = "personal_on"
PANEL = "personal_panel"  # the expander's own state (open or closed) as the browser last sent it
PANEL_OPEN = "personal_panel_open"  # whether the visitor left it open: kept when its title changes


def _personal(model):
    """This session's PersonalRecognizer for `model`, made anew when the model changed."""
    current = st.session_state.get(STATE)
    if current is None or current.base is not model:  # first use, or a promotion: read them anew
        current = model.personalize(_decoded(st.session_state.get(ITEMS, [])))
        st.session_state[STATE] = current
    return current


def _decoded(items):
    return [(np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")), label, strokes)
            for png, label, strokes in items]


def reader(model):
    """What reads the next drawing: the shared model, or it adapted to this person's examples."""
    personal = _personal(model)
    if st.session_state.get(SWITCH, True) and len(personal):
        return personal
    return model


def examples():
    """This session's personal examples as they are now: a new object whenever they change."""
    return st.session_state.get(STATE)


def remember(model, image, label: int, strokes, drawing_png) -> tuple:
    """Add one corrected or confirmed drawing (an array, or PNG bytes) to this person's examples
    (and their profile); returns what `link_sample` ties to the sample saved with it."""
    personal = _personal(model)
    if isinstance(image, bytes):
        image = _decoded([(image, label, strokes)])[0][0]
    item = (drawing_png(), label, strokes)
    items = st.session_state.get(ITEMS, []) + [item]
    st.session_state[ITEMS] = items[-MAX_PERSONAL_EXAMPLES:]
    st.session_state[STATE] = personal.adding([(image, label, strokes)])
    st.session_state[TAUGHT] = True
    profile, kept_as = st.session_state.get(PROFILE), None
    if profile:
        try:
            kept_as = store().add_personal(profile, label, item[0], strokes)
        except (DigitrecError, ValueError) as error:
            st.session_state["personal_problem"] = f"Not kept under '{profile}': {error}"
    return item, profile, kept_as


TAUGHT = "personal_taught"  # set when an example is added: the panel outside a fragment must be redrawn


def redraw_if_taught() -> None:
    """Call in a fragment whose form can teach (a number's digits): after a save that taught, the
    whole page runs again, so the panel under the canvas counts the new examples (a fragment's
    rerun had left it saying "Adapt to my handwriting"). Cleared first: one rerun, not a loop."""
    if st.session_state.pop(TAUGHT, False):
        st.rerun()


LINKS = "personal_sample_links"  # sample id -> what remember() returned for the same drawing


def link_sample(sample_id: int, taught: tuple) -> None:
    """The sample `sample_id` was saved from the drawing `taught` (from `remember`) made an example of."""
    links = st.session_state.setdefault(LINKS, {})
    links[sample_id] = taught
    while len(links) > MAX_PERSONAL_EXAMPLES:  # older ones left the examples anyway
        links.pop(next(iter(links)))


def forget_sample(sample_id: int) -> bool:
    """A deleted sample stops teaching this session's answers: its example goes too (and from the
    profile it was kept under). True when there was one."""
    taught = st.session_state.get(LINKS, {}).pop(sample_id, None)
    if taught is None:
        return False
    item, profile, kept_as = taught
    items = st.session_state.get(ITEMS, [])
    left = [other for other in items if other is not item]
    if len(left) == len(items):  # cleared, or replaced by a profile's examples, meanwhile
        return False
    st.session_state[ITEMS] = left
    st.session_state.pop(STATE, None)  # read again from ITEMS at the next drawing
    if profile and kept_as is not None:
        try:
            store().delete_personal(profile, kept_as)
        except (DigitrecError, ValueError):
            pass  # this tab no longer uses it; the name keeps it until it is cleared
    return True


def _use_profile(model) -> None:
    name = (st.session_state.get("personal_profile_input") or "").strip()
    if not name:
        st.session_state.pop(PROFILE, None)
        return
    try:
        kept = store().personal_examples(name)
    except (DigitrecError, ValueError) as error:
        st.session_state["personal_problem"] = str(error)
        return
    st.session_state[PROFILE] = name
    if kept:  # the name's examples replace this tab's
        st.session_state[ITEMS] = kept[-MAX_PERSONAL_EXAMPLES:]
        st.session_state.pop(STATE, None)
        return
    try:  # a new name: this tab's examples are kept under it from now on
        for png, label, strokes in st.session_state.get(ITEMS, []):
            store().add_personal(name, label, png, strokes)
    except (DigitrecError, ValueError) as error:
        st.session_state["personal_problem"] = f"Not kept under '{name}': {error}"


def _clear(model) -> None:
    profile = st.session_state.get(PROFILE)
    if profile:
        try:
            store().clear_personal(profile)
        except (DigitrecError, ValueError) as error:
            st.session_state["personal_problem"] = str(error)
    st.session_state[ITEMS] = []
    st.session_state[STATE] = model.personalize([])


ADAPTED_TITLE = "Adapted to you"  # the panel's title while examples change answers
OFF_TITLE = "Adapt to my handwriting"


def _remember_panel() -> None:
    st.session_state[PANEL_OPEN] = bool(st.session_state.get(PANEL))


def panel(model) -> None:
    """The switch, the count, the profile name and Clear (in an expander under the canvas)."""
    personal = _personal(model)
    count = len(personal)
    on = st.session_state.get(SWITCH, True)
    label = (f"{ADAPTED_TITLE}: {counted(count, 'example')}" if on and count
             else OFF_TITLE)
    # Its title changes with the count, and a new title makes a new expander (closed): it closed
    # under a visitor at the first save. Opened or closed, the visitor's choice is kept here.
    with st.expander(label, icon=":material/person:", expanded=st.session_state.get(PANEL_OPEN, False),
                     key=PANEL, on_change=_remember_panel):
        if not personal.adapts:
            st.caption("This model cannot adapt (its file has no feature output).")
            return
        st.toggle("Use my examples", value=True, key=SWITCH,
                  help="Each answer you confirm or correct (each digit of a number too) becomes an "
                       "example of your handwriting; the next drawing is read with them. Only you see "
                       "the effect.")
        st.caption(f"{count} of at most {MAX_PERSONAL_EXAMPLES} examples, from your corrections and "
                   "confirmations (a number's digits each count). They stay in this browser tab "
                   "unless you keep them under a name.")
        st.text_input("Keep them under a name (optional)", key="personal_profile_input",
                      max_chars=40, placeholder="e.g. ana-7",
                      help="Examples saved under this name come back when you enter it again. "
                           "Anyone who knows the name can use or clear them.")
        # A row that wraps: in two fixed columns "Clear my examples" was cut to "Clear my exa…"
        # beside a 1280 px window's canvas.
        row = st.container(horizontal=True, gap="small")
        row.button("Use this name", on_click=_use_profile, args=(model,))
        row.button("Clear my examples", on_click=_clear, args=(model,), disabled=count == 0)
        if st.session_state.get(PROFILE):
            st.caption(f"Kept under **{st.session_state[PROFILE]}**.")
        problem = st.session_state.pop("personal_problem", None)
        if problem:
            st.error(problem)
