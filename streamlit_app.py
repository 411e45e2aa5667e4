"""digitrec: draw a digit, see what the model reads. Run with `streamlit run streamlit_app.py`."""

import streamlit as st

from digitrec.memory import collect_if_due

TOP_ROOM_REM = 2.5  # space above a page's title; under it the header's menu would cover the title

collect_if_due()  # a full GC at most every 10 s across all sessions (postScriptGC is off)
# An emoji: the browser draws the tab's icon itself (a Material symbol is fetched from
# fonts.gstatic.com, which fails offline and behind strict firewalls).
st.set_page_config(page_title="digitrec — handwritten digits", page_icon="✍️", layout="wide")

# Less room above each page's title (Streamlit's 6rem): on a 1280x900 screen the Draw page's
# "Right?" pick of the right digit and its Save button were below the fold.
st.html(f"<style>[data-testid='stMainBlockContainer']{{padding-top:{TOP_ROOM_REM}rem}}</style>")

navigation = st.navigation([
    st.Page("app_pages/draw.py", title="Draw", icon=":material/draw:", default=True),
    st.Page("app_pages/samples.py", title="Samples", icon=":material/photo_library:"),
    st.Page("app_pages/retrain.py", title="Retrain", icon=":material/model_training:"),
    st.Page("app_pages/models.py", title="Models", icon=":material/deployed_code:"),
])
# Each page's browser tab says which page it is ("Draw · digitrec", "Samples · digitrec", ...).
st.set_page_config(page_title=f"{navigation.title} · digitrec")
navigation.run()
