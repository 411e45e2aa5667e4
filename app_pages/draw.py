"""Draw page: draw (or upload) a digit or a number and see what the model reads, live.

The canvas and its answer are one `st.fragment`: a stroke reruns only that part of the page,
and it sends only what the visitor waits for (the answer and its chart). What comes after the
answer (how it was read, what the model sees, "Right?") is a second fragment, which the
browser asks for once the answer is on the page (app_pages/answer_signal.py).
The canvas's result is read in one place, `read_canvas`.
"""

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from digitrec import DigitrecError, timing
from digitrec.data import CANVAS_SIZE, NUMBER_CANVAS, USER_PENS
from digitrec.explain import explain
from digitrec.limits import SaveQuota
from digitrec.preprocess import MAX_INPUT_SIDE, MODEL_SIZE
from digitrec.segment import (
    MAX_TYPED,
    DigitFlag,
    counted,
    digit_only,
    ordinal,
    read_number,
    read_number_as,
    strokes_in_image,
)
from digitrec.strokes import strokes_from_canvas
from digitrec.upload import (
    canvas_png,
    carriable,
    decode_canvas,
    decode_upload,
    moved_drawing,
    placement,
    stored_drawing,
)
from digitrec.views import (
    a_digit,
    explanation_image,
    model_input_image,
    percent,
    probability_chart_parts,
    readers_note,
)

from app_pages import answer_signal, personal_panel
from app_pages.common import recognizer, saved_by_this_session, store
from app_pages.viewport import content_width

# CANVAS_SIZE (the Digit canvas) and NUMBER_CANVAS where they fit; narrower screens get their width.
NUMBER_PHONE_HEIGHT = 200
PEN_RANGE = tuple(int(width) for width in USER_PENS)  # the pen-width slider's range (px)
CONTENT_WIDTH = "content_width_px"  # session key: the content column's width as last measured
PHONE_BELOW = 600  # content narrower than this (a phone): compact controls, everything stacked
CHART_HEIGHT = 200  # the bars' height (axes come on top)
DIGIT_CHART_HEIGHT = 130  # each digit's bars in Number mode
PHONE_CHART_HEIGHT = 120  # Digit mode on a phone: the bars beside the answer, in sight under the canvas
NBSP = "\u00a0"
PHONE_ANSWER_WIDTH = 120  # px: the answer's slot beside the chart on a phone
MAX_DIGIT_COLUMNS = 6
PHONE_DIGIT_WIDTH = 160  # px: a number's digit on a phone, two to a row in a 358 px column
TYPED_PICTURE_WIDTH = 72  # px: a typed split's digit pictures, side by side even on a phone
# px: on a phone all ten digits to pick from (after "not a digit") in two rows of five, 0-4 and
# 5-9 (a pill is about 32 px and 8 apart; across the 358 px column the 9 wrapped alone)
PHONE_PICK_WIDTH = 216
EXPLAIN_SCALE = 4  # "Why this answer?": the model input and its map, each 28 x 4 px
KEEP_SAVED = 100  # drawings per session remembered as saved (one drawing, one save)
DRAW_PROMPT = "Draw a digit in the box — the answer appears as soon as you lift the pen."
NUMBER_PROMPT = "Draw a number (several digits side by side), e.g. 2024."
NOT_A_NUMBER = "This does not look like a number: none of the ink reads as a digit."
UPLOAD_EMPTY = "No digit found in this picture: it looks like blank paper (or the ink is too faint)."
UPLOAD_DOT = ("No digit found in this picture: its ink is one dot or blob. A small digit written with a "
              "very thick pen can fill in like that; a photo of it larger, or written thinner, can be read.")
NOT_A_DIGIT = {"draw": "This does not look like a digit. Draw one digit, 0-9, as large as the box "
                       "(for several digits, choose **Number** above).",
               "upload": "This does not look like a digit. For a picture of a number, choose "
                         "**Number** above; otherwise upload a picture of one digit, 0-9."}
ANSWERED = "draw_answered"  # session state: the Answered drawing the details show
LAST_DRAWING = "draw_last"  # session state: the Drawn drawing last read, for the next canvas
CANVAS_START = "draw_canvas_start"  # session state: (canvas key, the Drawn it started with or None)
TITLE = "Draw digits"  # one line on a phone too
# The Draw tab's and the Upload tab's "Read" controls: the same words for the same choice (short
# enough that the phone's row of controls, with Pen and Clear, stays one row).
READ_LABEL = "Read"
READ_CHOICES = ["Digit", "Number"]
FLAG_LABELS = {DigitFlag.UNSURE: "unsure", DigitFlag.MAYBE_TWO: "two digits?",
               DigitFlag.MAYBE_JOINED: "one digit with the next?",
               DigitFlag.READ_WHOLE: "read from the whole number"}

# One heading for both tabs and both modes: it had followed the Draw tab's mode, so the Upload
# tab reading "A number" sat under "Draw a digit" (a new user's check).
st.title(TITLE, icon=":material/draw:")

try:
    page_model = recognizer()
except DigitrecError as error:
    st.error(f"No model can be loaded: {error}")
    st.stop()

st.caption(f"Model **{page_model.version}** · reads what you draw after every stroke")
if "canvas_generation" not in st.session_state:
    st.session_state.canvas_generation = 0


def clear_canvas():
    """Empty the canvas by mounting a fresh one."""
    # A new key mounts a fresh, empty canvas (the toolbar's reset only clears the browser side).
    st.session_state.canvas_generation += 1
    st.session_state.pop(LAST_DRAWING, None)  # and nothing is carried into it


UPLOAD_PREVIEW = 200  # px: an uploaded digit's picture as shown
CAME_ALONG = "What you drew last came along to this canvas: **Clear** starts afresh."


# ---- saving samples: one drawing, at most one save ------------------------------------------


def drawing_key(data: bytes) -> str:
    """A short hash of a drawing: the corrections' widgets and the saved mark are keyed by it."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def saved_drawings() -> dict:
    """This session's saved drawings: drawing key -> the message shown for it."""
    return st.session_state.setdefault("saved_drawings", {})


def save_samples(key: str, items: list, model_version: str, teach=None) -> None:
    """Save (prediction, label, drawing_png) items as samples, once per drawing key.

    A callback: it runs before the rerun, so the rerun already shows 'Saved' instead of the
    buttons; a second click (or a click on another label) for the same drawing saves nothing.
    `teach` (model, image, strokes) also makes the answer an example of this person's
    handwriting (personal adaptation), whether or not the sample could be saved; for several
    items (a number's digits), a function giving one such triple per item.
    """
    saved = saved_drawings()
    if key in saved:
        return
    lessons = teach() if callable(teach) else [teach] if len(items) == 1 else [None] * len(items)
    taught = [None if lesson is None else personal_panel.remember(*lesson[:2], label, lesson[2], drawing_png)
              for lesson, (_, label, drawing_png) in zip(lessons, items)]
    quota = st.session_state.setdefault("save_quota", SaveQuota())  # per-session count and rate
    done, problem = [], None
    for prediction, label, drawing_png in items:
        try:
            quota.check()
            sample_id = store().add(prediction.model_input, label, predicted=prediction.digit,
                                    probabilities=prediction.probabilities,
                                    model_version=model_version, drawing_png=drawing_png())
        except DigitrecError as error:
            problem = f"Could not save the sample: {error}"
            break
        quota.record()
        saved_by_this_session(sample_id)  # its Delete on the Samples page needs no password
        if taught[len(done)] is not None:  # deleting the sample later takes the example back too
            personal_panel.link_sample(sample_id, taught[len(done)])
        done.append((sample_id, label))
    if done:
        saved_ids()[key] = [sample_id for sample_id, _ in done]  # what Undo takes back
    if len(done) == 1 and len(items) == 1:
        saved[key] = f"Saved sample #{done[0][0]} as {a_digit(done[0][1])}. See it on the Samples page."
    elif done:
        ids = ", ".join(f"#{sample_id}" for sample_id, _ in done)
        saved[key] = (f"Saved {len(done)} samples ({ids}) as {''.join(str(digit) for _, digit in done)}"
                      f"{'' if len(done) == len(items) else f' (of {len(items)} digits)'}. "
                      "See them on the Samples page.")
    while len(saved) > KEEP_SAVED:
        oldest = next(iter(saved))
        saved.pop(oldest)
        saved_ids().pop(oldest, None)
    st.session_state.save_problem = (key, problem) if problem else None


def saved_ids() -> dict:
    """This session's saves: drawing key -> the sample ids saved from it (for Undo)."""
    return st.session_state.setdefault("saved_sample_ids", {})


def undo_save(key: str) -> None:
    """A callback: delete the samples just saved from this drawing, take back what they taught
    this person's answers, and offer the controls again (one mis-click had taught a wrong digit,
    undone only from the Samples page)."""
    undone = []
    for sample_id in saved_ids().pop(key, []):
        try:
            store().delete(sample_id)
        except DigitrecError as error:
            st.session_state.save_problem = (key, f"Could not undo the save: {error}")
            return
        personal_panel.forget_sample(sample_id)
        undone.append(sample_id)
    saved_drawings().pop(key, None)
    st.session_state[personal_panel.TAUGHT] = True  # the panel under the canvas counts again
    st.session_state.save_problem = None
    if undone:
        st.toast(f"Undone: sample{'s' if len(undone) > 1 else ''} "
                 f"{', '.join(f'#{sample_id}' for sample_id in undone)} deleted.", icon=":material/undo:")


def save_status(key: str, prefix: str = "") -> bool:
    """Show what happened to this drawing's save, with Undo; True when it is saved (no more buttons)."""
    problem = st.session_state.get("save_problem")
    if problem and problem[0] == key:
        st.error(problem[1])
    message = saved_drawings().get(key)
    if message:
        st.success(message, icon=":material/check_circle:")
        if saved_ids().get(key):
            st.button("Undo", icon=":material/undo:", key=f"{prefix}undo", on_click=undo_save, args=(key,),
                      help="Delete what was just saved: it stops teaching your answers too.")
    return message is not None


def fresh_controls(key: str, prefix: str, values: dict) -> None:
    """Give the correction controls `values` (widget key -> value) when the drawing changes.

    The controls keep stable widget keys: Streamlit keeps every widget id a session ever
    registered for the session's life, so keys made from each drawing's hash grew a long
    session's memory with every stroke. A new drawing sets their values instead (set, not
    deleted: the browser keeps a widget's last value under its id and sends it back unless the
    server sets a new one).
    """
    if st.session_state.get(f"{prefix}for") != key:
        for widget_key, value in values.items():
            st.session_state[widget_key] = value
        st.session_state[f"{prefix}for"] = key


def correction_form(prediction, drawing_png, key: str, model_version: str, teach=None, source="draw",
                    phone: bool = False):
    """Ask whether the answer is right and save the drawing with the true label, once."""
    prefix = f"correction_{source}_"  # the Draw and the Upload tab each have their own
    fresh_controls(key, prefix, {f"{prefix}pick": None})
    if save_status(key, prefix):
        return
    picture = "picture" if source == "upload" else "drawing"
    teaches = ("the next model trained with samples learns from it, and this page reads your next "
               "drawings with it at once (the handwriting panel under the canvas switches that off).")
    # One line: at 1280x900 the two it took pushed the pick of the right digit below the fold.
    if prediction.digit is None:  # "Right?" with only "it is a digit" to answer left "yes" unanswerable
        st.markdown("**A digit after all?** Pick it to save it.",
                    help=f"This {picture} is saved as a sample of the digit you pick: {teaches} "
                         "If it is not a digit, there is nothing to do: only digits are saved.")
    else:
        st.markdown("**Right?** Saving teaches the model.",
                    help=f"This {picture} is saved as a sample with the digit you confirm or pick: {teaches}")
    if prediction.digit is not None:  # not for a drawing the model says is no digit
        st.button(f"Yes, it is {a_digit(prediction.digit)}", icon=":material/check:",
                  key=f"{prefix}confirm", on_click=save_samples,
                  args=(key, [(prediction, prediction.digit, drawing_png)], model_version, teach))
    others = [str(d) for d in range(10) if d != prediction.digit]
    label = "No, the right digit is" if prediction.digit is not None else "The digit is"
    # wrap: placed straight in a column, pills otherwise stay on one row and scroll out of sight
    # (a new user's desktop check found the 9 hidden beside a 1280 px window's answer).
    place = st.container(width=PHONE_PICK_WIDTH) if phone and len(others) == 10 else st
    picked = place.pills(label, others, key=f"{prefix}pick", selection_mode="single", wrap=True)
    if picked is not None:
        st.button(f"Save as {a_digit(picked)}", icon=":material/edit:", key=f"{prefix}save",
                  on_click=save_samples,
                  args=(key, [(prediction, int(picked), drawing_png)], model_version, teach))


def number_correction_form(reading, drawing, key: str, model, slots, source="draw", reread=None):
    """Under each digit's chart (its slot) a pick of its right value; one button saves every digit.
    With `reread` (text -> the drawing read as those digits, and the pixels its boxes are in) the
    whole number can also be typed, for a drawing cut into digits wrongly."""
    prefix = f"number_{source}_"  # the Draw and the Upload tab each have their own
    fresh_controls(key, prefix, {f"{prefix}digit_{index}": prediction.digit or 0
                                 for index, prediction in enumerate(reading.digits)}
                   | {f"{prefix}typed": ""})
    if save_status(key, prefix):
        return
    labels = []
    for index in range(len(reading.digits)):
        with slots[index]:
            labels.append(int(st.selectbox(
                f"Digit {index + 1} is", range(10), key=f"{prefix}digit_{index}")))  # value: fresh_controls
    text = "".join(str(label) for label in labels)
    items = [(prediction, label, digit_drawing(drawing, index, reading.boxes))
             for index, (prediction, label) in enumerate(zip(reading.digits, labels))]
    right = text == reading.text
    digits = counted(len(items), "digit")
    yes = f"Yes, it is {text}: save it" if len(items) == 1 else f"Yes, it is {text}: save its {digits}"
    def teach():  # each digit also becomes an example of this person's handwriting, as in Digit mode
        return [(model, *digit_example(drawing, index, reading.boxes)) for index in range(len(items))]

    st.button(yes if right else f"Save as {text} ({digits})",
              icon=":material/check:" if right else ":material/edit:", key=f"{prefix}save",
              on_click=save_samples, args=(key, items, model.version, teach),
              help="Each digit is saved as a sample of its own. Correct any digit above first.")
    if reread is not None:
        typed_reading(reread, reading, key, model.version, prefix)


def typed_reading(reread, reading, key: str, model_version: str, prefix: str,
                  label: str = "Cut into digits wrongly? Type the whole number"):
    """'Cut wrongly? Type the number': the drawing split again as the digits typed, to save."""
    typed = st.text_input(label, key=f"{prefix}typed",
                          max_chars=MAX_TYPED, placeholder=reading.text,
                          help="The drawing is split again into exactly these digits, where they "
                               "fit best, and each part can be saved as a sample.").strip()
    if not typed or typed == reading.text:
        return
    try:
        split, picture = reread(typed)  # the reading, and the pixels its boxes are in
    except (DigitrecError, ValueError) as error:
        st.error(f"Cannot read it as {typed}: {error}.")
        return
    # A row that wraps (st.columns stack one per row on a phone: a 4-digit split was 4 screens).
    row = st.container(horizontal=True, gap="small")
    for index, prediction in enumerate(split.digits):
        read = "no digit" if prediction.digit is None else prediction.digit
        row.image(model_input_image(prediction.model_input, scale=2), width=TYPED_PICTURE_WIDTH,
                  caption=(typed[index] if prediction.digit == int(typed[index])
                           else f"{typed[index]} (read {read})"))
    items = [(prediction, int(typed[index]), digit_drawing(picture, index, split.boxes))
             for index, prediction in enumerate(split.digits)]
    differ = [index for index, prediction in enumerate(split.digits) if prediction.digit != int(typed[index])]
    if differ:  # a part cut as typed may still be something else: say so before it is saved
        parts = ", ".join(ordinal(index + 1) for index in differ)
        st.warning(f"The model reads the {parts} part{'s' if len(differ) > 1 else ''} as something "
                   "else: check the pictures are cut as you meant before saving.", icon=":material/help:")
    digits = counted(len(items), "digit")
    st.button(f"Save as {typed} ({digits}, cut as shown)", icon=":material/edit:", key=f"{prefix}save_typed",
              on_click=save_samples, args=(key, items, model_version))


def digit_example(drawing, index: int, boxes) -> tuple:
    """What a number's digit teaches (personal adaptation): its picture, as its sample keeps it,
    and its pen strokes moved into that picture (None for an uploaded number: PNGs, no strokes)."""
    if isinstance(drawing, list):
        return drawing[index], None
    box = boxes[index]
    strokes = [[(x - box.left, y - box.top) for x, y in stroke] for stroke in box.strokes] \
        if box.strokes else None
    return digit_only(drawing, box, boxes), strokes


def digit_drawing(drawing, index: int, boxes):
    """What a digit's sample keeps: its own ink cut from the canvas pixels, or an uploaded
    number's digit (PNGs)."""
    if isinstance(drawing, list):
        return lambda: drawing[index]
    return lambda: stored_drawing(digit_only(drawing, boxes[index], boxes))


# ---- showing a reading ---------------------------------------------------------------------


def show_answer(prediction, source: str = "draw", notes=None):
    """The predicted digit with its confidence (what a stroke waits for); the notes on it (changed
    by your examples, not sure) in `notes` when given (on a phone: under the answer's narrow slot)."""
    notes = st if notes is None else notes
    if prediction.digit is None:  # the model says this is no digit (status "not_digit")
        st.warning(NOT_A_DIGIT[source], icon=":material/help:")
        if prediction.probabilities is not None:
            st.markdown("As a digit it would be: " + " · ".join(
                f"**{d}** {percent(p)}" for d, p in prediction.top(3)))
        return
    # No tooltips here: each is a popover the browser builds again at every stroke (the
    # calibration note is on the top 3, which comes after the answer).
    st.metric("Prediction", str(prediction.digit))
    # A no-break space: beside the chart on a phone the line broke inside "> 99.9%".
    st.markdown(f"Confidence **{percent(prediction.confidence).replace(' ', NBSP)}**")
    base = prediction.base_probabilities
    if base is not None and max(range(10), key=lambda d: base[d]) != prediction.digit:
        # One example saved with a wrong label changes answers at once: say so where the answer is.
        shared = max(range(10), key=lambda d: base[d])
        notes.caption(f"Changed by your examples: the shared model alone reads {a_digit(shared)} "
                      f"({percent(base[shared])}). To read without them, switch off *Use my examples* "
                      f"in *{personal_panel.ADAPTED_TITLE}*.")
    if prediction.status == "unsure":
        (first, _), (second, _) = prediction.top(2)
        notes.warning(f"Not sure: {a_digit(first)} or {a_digit(second)}?")


def show_reading(prediction):
    """How the answer was read: the top 3 and from what."""
    if prediction.digit is None:  # show_answer said it all
        return
    # No-break spaces: in the narrow column a line broke inside an entry ("1 <" / "0.1%").
    entries = [f"**{d}**{NBSP}{percent(p).replace(' ', NBSP)}" for d, p in prediction.top(3)]
    st.markdown("Top 3: " + " · ".join(entries),
                help="The probabilities are calibrated: of the drawings read with 90% confidence, "
                     "about 90% are read right.")
    how = "your strokes and the picture" if prediction.used_strokes else "the picture"
    if prediction.base_probabilities is not None:
        shared = max(range(10), key=lambda d: prediction.base_probabilities[d])
        if shared == prediction.digit:
            how += (f", adapted to your examples (the shared model alone: {a_digit(shared)}, "
                    f"{percent(prediction.base_probabilities[shared])}; ticks on the chart)")
        else:  # the note under the answer names the shared model's answer already: once is enough
            how += ", adapted to your examples (the ticks on the chart: the shared model alone)"
    st.caption(f"Read from {how}.")
    disagreement = readers_note(prediction.readers)
    if disagreement:
        st.caption(disagreement)


def show_pictures(prediction, model, source: str, wide=None):
    """What the model sees and, when asked, why it read that (in `wide`, a container with room
    for the two pictures side by side and their caption, when given)."""
    # No help icon: it did not fit the desktop column beside the label, and a tap on a toggle's
    # "?" flips the toggle (Streamlit) rather than showing the help. The caption under the map
    # says how it is made.
    why = st.toggle("Why this answer?", key=f"explain-{source}")
    # The page's answer against its runner-up (the Top 3's first two, strokes included), weighed
    # on the picture: the picture's own runner-up had contradicted the Top 3.
    pair = tuple(digit for digit, _ in prediction.top(2))
    adapted = getattr(prediction, "base_probabilities", None) is not None
    explanation = explain(model, prediction.model_input, pair) if why and len(pair) == 2 else None
    if explanation is None:
        st.image(model_input_image(prediction.model_input, scale=5), caption="What the model sees (28×28)")
        return
    place = wide if wide is not None else st.container()
    # Side by side at one width: without it the first stretched to its longer caption.
    place.image([model_input_image(prediction.model_input, scale=EXPLAIN_SCALE),
                 explanation_image(prediction.model_input, explanation.evidence, scale=EXPLAIN_SCALE)],
                caption=["What the model sees", f"Why {a_digit(explanation.answer)}"],
                width=EXPLAIN_SCALE * MODEL_SIZE)
    place.caption(f":violet[**Indigo**]: what made it {a_digit(explanation.answer)}. "
                  f":orange[**Amber**]: what pulled towards {a_digit(explanation.runner_up)}, the runner-up. "
                  "The stronger the colour, the more the picture's answer changes without that part "
                  "(each small patch blanked in turn, in one batched model call)."
                  + (" The map is the shared model's: your examples are not in it." if adapted else ""))


def show_result(prediction, drawing_png, key: str, model, source: str, answer_column, chart_column,
                started: float | None = None, teach=None, phone: bool = False):
    """The answer (first: it is what a stroke waits for), the chart, the pictures, 'Right?'.

    On a phone both columns are the same container: everything stacked, answer first.
    """
    with answer_column:
        if prediction.status == "empty":
            st.info(DRAW_PROMPT if source != "upload" else UPLOAD_DOT if prediction.dot else UPLOAD_EMPTY)
            return
        show_answer(prediction, source)
    if started is not None:
        timing.record("draw-answer", started)  # the script's part of what a stroke waits for
    if prediction.probabilities is not None:
        with chart_column:
            st.vega_lite_chart(*probability_chart_parts(prediction, CHART_HEIGHT), width="stretch")
    with answer_column:
        show_reading(prediction)
        show_pictures(prediction, model, source)
    with chart_column:
        correction_form(prediction, drawing_png, key, model.version, teach, source, phone)


def show_number(reading, drawing, key: str, model, phone: bool, source: str = "draw", reread=None):
    """The number, then each digit with its own chart, aligned in columns, and 'Right?'."""
    if not reading.digits:
        if not reading.left_out:
            st.info(NUMBER_PROMPT)
            return
        # A way out, as Digit mode's "A digit after all?": "00" in one joined stroke read as no digit.
        st.warning(NOT_A_NUMBER + (" If it is one, type it below." if reread is not None else ""),
                   icon=":material/help:")
        if reread is not None:
            prefix = f"number_{source}_"
            fresh_controls(key, prefix, {f"{prefix}typed": ""})
            if not save_status(key, prefix):
                typed_reading(reread, reading, key, model.version, prefix, "A number after all? Type it")
        return
    st.metric("Number", reading.text, help="The digits the model reads, left to right.")
    notes = reading.notes()  # low confidence, a digit that may be two (or half of one), ink left out
    if notes:
        advice = "" if len(notes) == len(set(reading.left_out)) else " Correct any digit below."
        if reading.left_out and reread is not None:
            advice += " If a digit is missing, type the whole number below."
        st.warning(" ".join(notes) + advice, icon=":material/help:")
    if reading.from_strokes:
        st.caption(f"Digits grouped from your {counted(reading.stroke_count, 'pen stroke')}.")
    st.subheader("Each digit", divider="gray")
    count = len(reading.digits)
    # One container per digit, filled now (picture, chart) and by the correction form (its pick):
    # on a phone two side by side in a row that wraps (columns stack there, one digit a screen:
    # a 4-digit photo made a page 3,000 px tall), each digit's pick under its own chart.
    if phone:
        row = st.container(horizontal=True, gap="small")
        slots = [row.container(width=PHONE_DIGIT_WIDTH) for _ in range(count)]
    else:
        columns = st.columns(min(count, MAX_DIGIT_COLUMNS), gap="medium")
        slots = [columns[index % len(columns)].container() for index in range(count)]
    doubts = [" · ".join(text for flag, text in FLAG_LABELS.items()
                         if flag in (reading.flags[index] if index < len(reading.flags) else ()))
              for index in range(count)]
    for index, prediction in enumerate(reading.digits):
        with slots[index]:
            if phone:  # side by side in the narrow slot (columns would stack)
                picture = label = st.container(horizontal=True, vertical_alignment="center", gap="small")
            else:
                picture, label = st.columns([1, 2], vertical_alignment="center")
            picture.image(model_input_image(prediction.model_input, scale=2 if phone else 3))
            # A doubt in small type on a line of its own beside the picture (in the body's size it
            # wrapped to four lines), and an empty such line beside every other digit's picture
            # while one has a doubt: the charts below stay level.
            label.markdown(f"**{prediction.digit}** · {percent(prediction.confidence)}"
                           + (f"  \n:small[{doubts[index] or '&nbsp;'}]" if any(doubts) else ""))
            st.vega_lite_chart(*probability_chart_parts(prediction, DIGIT_CHART_HEIGHT, compact=True),
                               width="stretch")
    st.markdown("**Right?** Correct any digit, then save each as a sample to teach the next model.")
    number_correction_form(reading, drawing, key, model, slots, source, reread)


# ---- the canvas ----------------------------------------------------------------------------


def is_phone(width: int | None) -> bool:
    """Whether a content column `width` px wide (None: not measured yet) is a phone's."""
    return width is not None and width < PHONE_BELOW


def canvas_size(mode: str, width: int | None) -> tuple[int, int]:
    """The canvas for this mode, fitted to a content column `width` px wide (None: not known yet)."""
    if mode == "Digit":
        side = CANVAS_SIZE if width is None else max(160, min(CANVAS_SIZE, width))
        return side, side
    if width is None or width >= NUMBER_CANVAS[0]:
        return NUMBER_CANVAS
    return max(200, width), NUMBER_PHONE_HEIGHT if width < PHONE_BELOW else NUMBER_CANVAS[1]


def drawing_controls(phone: bool) -> tuple[str, int]:
    """Mode, pen width and Clear: one labelled row, or on a phone one compact row."""
    if phone:
        row = st.container(horizontal=True, vertical_alignment="center", gap="small")
        mode = row.segmented_control(READ_LABEL, READ_CHOICES, default="Digit", key="mode",
                                     label_visibility="collapsed")
        with row.popover("Pen", icon=":material/line_weight:"):
            stroke = st.slider("Pen width", *PEN_RANGE, 18, key="stroke")
        row.button("Clear", on_click=clear_canvas, icon=":material/ink_eraser:")
    else:
        controls = st.columns([2, 2, 1], vertical_alignment="bottom")
        mode = controls[0].segmented_control(READ_LABEL, READ_CHOICES, default="Digit", key="mode")
        stroke = controls[1].slider("Pen width", *PEN_RANGE, 18, key="stroke")
        controls[2].button("Clear", on_click=clear_canvas, width="stretch", icon=":material/ink_eraser:")
    return mode or "Digit", stroke


def read_canvas(canvas, size: tuple[int, int]):
    """The one place the canvas's result is read: (RGBA pixels or None, drawing key or None,
    the pen strokes in canvas pixels, drawing order)."""
    try:  # the PNG's size is checked before any pixel is decoded (never canvas.image_data)
        data = canvas_png(canvas)
        drawing = decode_canvas(data, *size)
    except DigitrecError as error:
        st.error(str(error))
        return None, None, None
    try:  # the vector paths: how the drawing was written (bounded in digitrec.strokes)
        strokes = strokes_from_canvas(canvas.json_data, size) if drawing is not None else None
    except DigitrecError as error:
        st.warning(f"Read from the picture only: {error}")
        strokes = None
    return drawing, (drawing_key(data) if drawing is not None else None), strokes


@dataclass(frozen=True)
class Drawn:
    """A drawing read from a canvas of `size`: carried into the next canvas (Digit <-> Number,
    a phone turned) when it fits there, shrunk to a lower one (a phone's Number canvas), so
    changing mode does not throw it away."""

    size: tuple[int, int]
    json_data: dict  # the canvas's objects: the next canvas starts with them (initial_drawing)
    drawing: object  # RGBA pixels
    strokes: object  # canvas pixels, drawing order
    key: str  # drawing_key of what was read

    def on(self, size: tuple[int, int]):
        """This drawing on a canvas of `size` (shrunk to a lower one), or None if it cannot go there."""
        if size == self.size:
            return self
        place = placement(self.drawing, self.size, size)
        if place is None:
            return None
        key = f"{self.key}-{place.scale:.3f}" if place.moves else self.key  # other pixels, another key
        return Drawn(size, place.objects(self.json_data), moved_drawing(self.drawing, self.size, size, place),
                     place.strokes(self.strokes), key)


def nothing_sent(canvas) -> bool:
    """Whether the browser has sent no drawing from this canvas yet."""
    try:
        return canvas_png(canvas) is None
    except DigitrecError:  # something unreadable was sent (read_canvas said so)
        return False


def canvas_start(canvas_key: str, size: tuple[int, int]):
    """The drawing a newly mounted canvas starts with (the last one read, where it fits), fixed
    for the canvas's life: a change of its initial drawing would redraw the canvas."""
    started = st.session_state.get(CANVAS_START)
    if started is None or started[0] != canvas_key:  # only the canvas on the page now counts
        last = st.session_state.get(LAST_DRAWING)
        started = st.session_state[CANVAS_START] = (canvas_key, last.on(size) if last is not None else None)
    return started[1]


@dataclass(frozen=True)
class Answered:
    """A drawing the answer's fragment has read, for the details' fragment to show."""

    key: str  # drawing_key of the canvas PNG
    prediction: object  # digitrec.inference.Prediction
    drawing: object  # the canvas pixels (RGBA array)
    strokes: object  # the pen strokes, or None
    model: object  # the Recognizer that read it
    examples: object  # the personal examples it was read with (personal_panel.examples())


COLUMN_GAP = 16  # st.columns' default ("small") gap between columns, in CSS pixels
# The canvas component's toolbar (undo, redo, clear) sits 2.9rem (46 px) above the canvas
# (viewport.CANVAS_TOOLBAR_CSS; off the canvas itself); with the 16 px gap between elements and
# this much more space it stays clear of the controls above (on a phone it covered the Pen button).
TOOLBAR_ROOM = 16
# The chart's toolbar (table, download, copy, full screen) rises above it while the pointer is
# over it: with this much space above the chart it no longer covers the Clear button, where a
# click from the chart had landed on "Copy Vega-Lite spec" (desktop Digit mode).
CHART_TOOLBAR_ROOM = 24


def answer_width(width: int | None, size: tuple[int, int], gaps: int = 2) -> int:
    """Desktop Digit mode: the width beside the canvas (its column `size[0] + 16` wide), for the
    answer and the chart. Column weights share the width left after the `gaps` between them, so
    the weights add up to exactly that: the canvas column is never narrower than the canvas."""
    if width is None:
        return 2 * size[0]
    return max(1, width - size[0] - 16 - gaps * COLUMN_GAP)


@st.fragment
def drawing_area(mode: str, stroke: int, width: int | None, generation: int):
    """The canvas and its answer: a stroke reruns only this, and it sends only the answer.

    The controls above it are not part of it (a change of mode, pen or Clear reruns the page
    and calls this with the new values). In Digit mode the drawing is kept (ANSWERED) for
    `drawing_details`, which the browser reruns once the answer is on the page.
    """
    personal_panel.redraw_if_taught()  # a number's saved digits just taught: the panel too
    started = timing.start()
    try:
        model = recognizer(warn=False)  # a promotion shows up at the next stroke
    except DigitrecError as error:  # every model deleted or broken since the page was opened
        st.error(f"No model can be loaded: {error}")
        return
    phone = is_phone(width)
    size = canvas_size(mode, width)
    if mode == "Digit" and not phone:
        rest = answer_width(width, size)
        canvas_column, answer_column, chart_column = st.columns([size[0] + 16, rest * 2 // 5, rest * 3 // 5])
    else:  # a number needs the whole width to draw on; a phone stacks everything
        canvas_column = answer_column = chart_column = st.container()
    canvas_key = f"canvas-{mode}-{size[0]}x{size[1]}-{generation}"
    start = canvas_start(canvas_key, size)
    with canvas_column:
        st.space(TOOLBAR_ROOM)
        canvas = st_canvas(stroke_width=stroke, stroke_color="#111111", background_color="",
                           height=size[1], width=size[0], drawing_mode="freedraw",
                           update_streamlit=True, return_image_data=True, key=canvas_key,
                           initial_drawing=start.json_data if start is not None else None)
    drawing, key, strokes = read_canvas(canvas, size)
    if start is not None and nothing_sent(canvas):  # the canvas sends only what is drawn on it
        drawing, key, strokes = start.drawing, start.key, start.strokes
        # Said while nothing is drawn on it yet: a new user started a new number on top of the
        # digit that came along and read "3185" for 385.
        canvas_column.caption(CAME_ALONG)
    if strokes and carriable(canvas.json_data):  # what is on the canvas goes with the next one
        st.session_state[LAST_DRAWING] = Drawn(size, canvas.json_data, drawing, strokes, key)
    elif drawing is not None:  # emptied (the canvas's own reset), strokes unreadable or too big
        st.session_state.pop(LAST_DRAWING, None)
    reader = personal_panel.reader(model)  # the shared model, or it adapted to this person
    st.session_state[ANSWERED] = None
    if drawing is None:
        with answer_column:
            st.info(DRAW_PROMPT if mode == "Digit" else NUMBER_PROMPT)
    elif mode == "Digit":
        prediction = reader.predict(drawing, strokes=strokes)
        chart_height, room, notes = CHART_HEIGHT, CHART_TOOLBAR_ROOM, None
        if phone and prediction.digit is not None:
            # Answer and chart side by side under the canvas (stacked, the chart was below the
            # fold: the answer came without the "how sure" of the other digits).
            row = answer_column.container(horizontal=True, gap="small")
            notes = answer_column.container()
            answer_column, chart_column = row.container(width=PHONE_ANSWER_WIDTH), row.container()
            chart_height, room = PHONE_CHART_HEIGHT, 0  # no pointer hovers on a phone
        with answer_column:
            if prediction.status == "empty":
                st.info(DRAW_PROMPT)
            else:
                show_answer(prediction, notes=notes)
        timing.record("draw-answer", started)  # the script's part of what a stroke waits for
        if prediction.probabilities is not None:
            with chart_column:
                if room:
                    st.space(room)
                st.vega_lite_chart(*probability_chart_parts(prediction, chart_height), width="stretch")
        if prediction.status != "empty":
            st.session_state[ANSWERED] = Answered(key, prediction, drawing, strokes, model,
                                                  personal_panel.examples())
        timing.record("draw", started)
    else:
        # Scaled to the drawing's pixels on high-density screens.
        in_image = strokes_in_image(strokes, size[0], drawing.shape[1]) if strokes else None
        show_number(read_number(reader, drawing, strokes=in_image), drawing, key, model, phone,
                    reread=lambda text: (read_number_as(reader, drawing, text, strokes=in_image), drawing))
        timing.record("number", started)
    with canvas_column:  # under the canvas: the (invisible) element's gap does not show
        answer_signal.announce(st.session_state[ANSWERED] and st.session_state[ANSWERED].key)


@st.fragment
def drawing_details(phone: bool):
    """What comes after a drawn digit's answer: how it was read, what the model sees, 'Right?'.

    Its own fragment, rerun by the browser once a stroke's answer is on the page (through
    answer_signal), so none of it delays the answer; a full rerun shows it at once.
    """
    answered = st.session_state.get(ANSWERED)
    answer_signal.follow(answered and answered.key)
    if answered is None:
        return
    if answered.examples is not personal_panel.examples():  # "Right?" just taught the page
        st.session_state.pop(personal_panel.TAUGHT, None)  # this rerun redraws the panel too
        st.rerun()  # the answer is read again with the new example, the panel counts it
    started = timing.start()
    prediction, drawing, strokes = answered.prediction, answered.drawing, answered.strokes
    # The form's column fits the pick of the right digit (nine pills) on one row at 1280 px. After
    # "not a digit" the pick has ten and the reading only the picture: the form goes first, across
    # the details' width (beside the picture the 9 wrapped alone; a wider form column cut the
    # picture's "Why this answer?" short).
    # On a phone everything stacks: "Right?" comes straight under the answer and its chart (under
    # the top 3, "Why" and the picture it was some 1,100 px down, two screens from the canvas).
    if phone or prediction.digit is None:
        form_column, reading_column = st.container(), st.container()
    else:
        reading_column, form_column = st.columns([1, 2])
    explained = st.container()  # under both: the explanation's two pictures did not fit the column
    with reading_column:
        show_reading(prediction)
        show_pictures(prediction, answered.model, "draw", wide=explained)
    with form_column:
        correction_form(prediction, lambda: stored_drawing(drawing), answered.key, answered.model.version,
                        teach=(answered.model, drawing, strokes), phone=phone)
    timing.record("draw-details", started)


@st.fragment
def upload_area():
    """A photo or scan of one digit or of a number, read once per file."""
    personal_panel.redraw_if_taught()  # its "Right?" taught: the panel under the canvas counts it
    try:
        model = recognizer(warn=False)
    except DigitrecError as error:
        st.error(f"No model can be loaded: {error}")
        return
    number = st.segmented_control(READ_LABEL, READ_CHOICES, default="Digit", key="upload-kind") == "Number"
    upload = st.file_uploader("A photo or scan of one digit or of a number",
                              type=["png", "jpg", "jpeg", "webp", "bmp"])
    if upload is None:
        return
    if number:
        upload_number(model, upload)
        return
    key = (upload.file_id, model.version)
    if st.session_state.get("upload_key") != key:
        try:
            image = decode_upload(upload.getvalue())
            # The session keeps a small PNG of the photo (shown and saved), not its pixels.
            st.session_state.upload_result = (stored_drawing(image),
                                              personal_panel.reader(model).predict(image), None)
        except (DigitrecError, ValueError) as error:
            st.session_state.upload_result = (None, None, str(error))
        st.session_state.upload_key = key
    image, prediction, problem = st.session_state.upload_result
    if problem:
        st.error(f"Cannot read this file: {problem}")
        return
    width = st.session_state.get(CONTENT_WIDTH)
    if is_phone(width):
        st.image(image, caption=upload.name, width=UPLOAD_PREVIEW)
        answer_column, chart_column = st.columns([2, 3])
    else:  # as the canvas does: the picture beside its answer ("Right?" was below a desktop's fold)
        rest = answer_width(width, (UPLOAD_PREVIEW, UPLOAD_PREVIEW))
        picture, answer_column, chart_column = st.columns([UPLOAD_PREVIEW + 16, rest * 2 // 5, rest * 3 // 5])
        picture.image(image, caption=upload.name, width=UPLOAD_PREVIEW)
    show_result(prediction, lambda: image, drawing_key(image), model, "upload", answer_column, chart_column,
                teach=(model, image, None), phone=is_phone(width))


def upload_number(model, upload):
    """A photo of a number: read once per file, each digit with its chart and correction."""
    reader = personal_panel.reader(model)  # as the Number canvas reads: this person's examples too
    key = ("number", upload.file_id, model.version, id(reader))
    if st.session_state.get("upload_number_key") != key:
        try:
            image = decode_upload(upload.getvalue())
            reading = read_number(reader, image)  # from pixels: a photo has no strokes
            # The session keeps small PNGs of the photo and of each digit (shown and saved), not pixels.
            pixels = np.asarray(image)
            digits = [stored_drawing(digit_only(pixels, box)) for box in reading.boxes]
            st.session_state.upload_number = (stored_drawing(image), reading.without_crops(), digits, None)
        except (DigitrecError, ValueError) as error:
            st.session_state.upload_number = (None, None, None, str(error))
        st.session_state.upload_number_key = key
    image, reading, digits, problem = st.session_state.upload_number
    if problem:
        st.error(f"Cannot read this file: {problem}")
        return
    st.image(image, caption=upload.name)
    if not reading.digits:
        st.info("No digits found in this picture.")
        return

    def reread(text):
        """The photo read as the digits typed (decoded again: the session keeps no pixels),
        at the size preprocessing reads it anyway."""
        photo = decode_upload(upload.getvalue())
        photo.thumbnail((MAX_INPUT_SIDE, MAX_INPUT_SIDE))
        return read_number_as(reader, photo, text), np.asarray(photo)

    show_number(reading, digits, drawing_key(image) + "-number", model,
                phone=is_phone(st.session_state.get(CONTENT_WIDTH)), source="upload", reread=reread)


draw_tab, upload_tab = st.tabs(["Draw", "Upload a photo"])
with draw_tab:
    content = content_width()  # None until the browser has measured it (the first run)
    st.session_state[CONTENT_WIDTH] = content  # for the Upload tab's fragment too
    on_phone = is_phone(content)
    drawing_mode, pen_width = drawing_controls(on_phone)
    drawing_area(drawing_mode, pen_width, content, st.session_state.canvas_generation)
    if drawing_mode == "Digit" and not on_phone:  # under the answer and the chart; the panel under the canvas
        side = canvas_size(drawing_mode, content)[0]
        panel_column, details_column = st.columns([side + 16, answer_width(content, (side, side), gaps=1)])
    else:  # stacked: the details, then the panel
        details_column, panel_column = st.container(), st.container()
    with details_column:
        drawing_details(on_phone)
    with panel_column:
        personal_panel.panel(page_model)
with upload_tab:
    upload_area()
