"""Draw page: draw (or upload) a digit or a number and see what the model reads, live."""

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from digitrec import DigitrecError, timing
from digitrec.segment import read_number
from digitrec.limits import SaveQuota
from digitrec.upload import decode_canvas, decode_upload, stored_drawing
from digitrec.views import model_input_image, probability_chart_spec
from app_pages.common import recognizer, store

CANVAS_SIZE = 280
started = timing.start()

st.title("Draw a digit", icon=":material/draw:")

try:
    model = recognizer()
except DigitrecError as error:
    st.error(f"No model can be loaded: {error}")
    st.stop()

st.caption(f"Model **{model.version}** · reads what you draw after every stroke")
if "canvas_generation" not in st.session_state:
    st.session_state.canvas_generation = 0


def clear_canvas():
    """Empty the canvas by mounting a fresh one."""
    # A new key mounts a fresh, empty canvas (the toolbar's reset only clears the browser side).
    st.session_state.canvas_generation += 1
    st.session_state.pop("saved_message", None)


def show_result(prediction, drawing_png, source):
    # drawing_png is a function: the PNG is only made when a sample is saved, not every rerun.
    """The predicted digit, its confidence, the chart, the top 3, what the model sees, and 'Right?'."""
    if prediction.status == "empty":
        st.info("Draw a digit in the box — the answer appears as soon as you lift the pen.")
        return
    left, right = st.columns([1, 2])
    with left:
        st.metric("Prediction", str(prediction.digit),
                  help="The digit the model reads, with its probability below.")
        st.markdown(f"Confidence **{prediction.confidence:.1%}**")
        if prediction.status == "unsure":
            (first, _), (second, _) = prediction.top(2)
            st.warning(f"Not sure: a {first} or a {second}?")
        st.markdown("Top 3: " + " · ".join(f"**{d}** {p:.1%}" for d, p in prediction.top(3)))
        st.image(model_input_image(prediction.model_input, scale=5),
                 caption="What the model sees (28×28)")
    with right:
        st.vega_lite_chart(probability_chart_spec(prediction), width="stretch")
    correction_form(prediction, drawing_png, source)


def correction_form(prediction, drawing_png, source):
    """Ask whether the answer is right and save the sample with the true label."""
    st.markdown("**Right?** Save this drawing to teach the next model.")
    yes_column, no_column = st.columns([1, 2])
    label = None
    if yes_column.button(f"Yes, it is a {prediction.digit}", icon=":material/check:", key=f"confirm-{source}"):
        label = prediction.digit
    with no_column:
        picked = st.pills("No, it is a …", [str(d) for d in range(10)], key=f"pick-{source}",
                          selection_mode="single")
        if picked is not None and st.button("Save correction", key=f"save-{source}"):
            label = int(picked)
    if label is None:
        return
    quota = st.session_state.setdefault("save_quota", SaveQuota())  # per-session count and rate
    try:
        quota.check()
        sample_id = store().add(prediction.model_input, label, predicted=prediction.digit,
                                probabilities=prediction.probabilities,
                                model_version=model.version, drawing_png=drawing_png())
    except DigitrecError as error:
        st.error(f"Could not save the sample: {error}")
        return
    quota.record()
    st.success(f"Saved sample #{sample_id} as a {label}. See it on the Samples page.")


def show_number(reading):
    """Each digit of a drawn number with its own chart."""
    if not reading.digits:
        st.info("Draw a number (several digits side by side), e.g. 2024.")
        return
    st.metric("Number", reading.text)
    if reading.unsure:
        st.warning("Some digits are uncertain; see their charts below.")
    columns = st.columns(min(len(reading.digits), 6))
    for index, prediction in enumerate(reading.digits):
        with columns[index % len(columns)]:
            st.markdown(f"**{prediction.digit}** · {prediction.confidence:.0%}")
            st.image(model_input_image(prediction.model_input, scale=3))
            st.vega_lite_chart(probability_chart_spec(prediction, height=120), width="stretch")


draw_tab, upload_tab = st.tabs(["Draw", "Upload a photo"])

with draw_tab:
    controls = st.columns([2, 2, 1])
    mode = controls[0].segmented_control("Mode", ["Digit", "Number"], default="Digit",
                                         key="mode") or "Digit"
    stroke = controls[1].slider("Pen width", 6, 40, 18, key="stroke")
    controls[2].button("Clear", on_click=clear_canvas, width="stretch")
    width = CANVAS_SIZE if mode == "Digit" else CANVAS_SIZE * 5 // 2
    if mode == "Digit":
        canvas_column, result_column = st.columns([1, 2])
    else:  # a number needs the whole width to draw on; its digits are shown underneath
        canvas_column, result_column = st.container(), st.container()
    with canvas_column:
        canvas = st_canvas(stroke_width=stroke, stroke_color="#111111", background_color="",
                           height=CANVAS_SIZE, width=width, drawing_mode="freedraw",
                           update_streamlit=True, return_image_data=True,
                           key=f"canvas-{mode}-{st.session_state.canvas_generation}")
    try:  # the PNG's size is checked before any pixel is decoded (never canvas.image_data)
        drawing = decode_canvas(canvas.image_bytes if canvas is not None else None, width, CANVAS_SIZE)
    except DigitrecError as error:
        drawing = None
        st.error(str(error))
    with result_column:
        if drawing is None and mode == "Number":
            st.info("Draw a number (several digits side by side), e.g. 2024.")
        elif drawing is None:
            st.info("Draw a digit in the box — the answer appears as soon as you lift the pen.")
        elif mode == "Digit":
            show_result(model.predict(drawing), lambda: stored_drawing(drawing), "draw")
            timing.record("draw", started)
        else:
            show_number(read_number(model, drawing))
            timing.record("number", started)

with upload_tab:
    upload = st.file_uploader("A photo or scan of one digit", type=["png", "jpg", "jpeg", "webp", "bmp"])
    if upload is not None:
        # Both tabs run on every rerun: read a file once, not again at every canvas stroke.
        key = (upload.file_id, model.version)
        if st.session_state.get("upload_key") != key:
            try:
                image = decode_upload(upload.getvalue())
                # The session keeps a small PNG of the photo (shown and saved), not its pixels.
                st.session_state.upload_result = (stored_drawing(image), model.predict(image), None)
            except (DigitrecError, ValueError) as error:
                st.session_state.upload_result = (None, None, str(error))
            st.session_state.upload_key = key
        image, prediction, problem = st.session_state.upload_result
        if problem:
            st.error(f"Cannot read this file: {problem}")
        else:
            st.image(image, caption=upload.name, width=200)
            show_result(prediction, lambda: image, "upload")
