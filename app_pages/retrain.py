"""Retrain page: train a candidate in the background with live curves, evaluate it, promote it."""

import dataclasses
import math
import os
import time
import uuid

import streamlit as st

from digitrec import DigitrecError, admin, data, registry
from digitrec import card as model_card
from digitrec.config import (
    ARCHITECTURE_NOTES,
    ARCHITECTURES,
    LIMITS,
    MAX_SAMPLE_LABEL_SHARE,
    MAX_SAMPLE_SHARE,
    RETRAIN_DEFAULTS,
    TRAINING_COOLDOWN_S,
)
from digitrec.evaluate import CANVAS, MNIST_TEST, SAVED_SAMPLES, class_losses, evaluate_version
from digitrec.events import JobState
from digitrec.jobs import manager
from digitrec.limits import visitor_name
from digitrec.views import (
    confusion_chart,
    model_input_image,
    reliability_chart,
    time_left_text,
    training_curves,
)

from app_pages.common import admin_password, samples_url, store
from app_pages.promotion import ask_pending, loss_summary, promote_clicked, show_message

st.title("Retrain the model", icon=":material/model_training:")
st.caption("Train a candidate on MNIST (and your saved samples) right here, watch it learn, "
           "compare it with the active model, and promote it if it is better.")

if "session_name" not in st.session_state:
    # After a reload the address may name the training this person started: keep their name.
    started = manager.current()
    st.session_state.session_name = started.owner if started is not None and \
        st.query_params.get("job") == started.token else f"session {uuid.uuid4().hex[:6]}"


LAST_SETTINGS = "retrain_last_settings"  # session key: the settings this session last started with


@st.cache_data(ttl=30, show_spinner="Looking for MNIST…")
def mnist_source(folder, keras_copy):
    """Where training will get MNIST from (a MnistSource), or what is missing (a str).

    Keyed by the MNIST folder setting and Keras' copy (arguments), checked again every 30 s.
    """
    try:
        return data.find_mnist(folder)
    except DigitrecError as error:
        return str(error)


def settings_form(disabled: bool = False, password_configured: bool = False, pen_digits: bool = True,
                  yours=None):
    """The training settings; returns (config, include_samples, password) when submitted, else None.
    `pen_digits`: whether this server has the pen trajectories (else their switch is off and says so);
    `yours`: the settings of the training this page's address started, if any."""
    # This session's last started settings: the form is not drawn while a training runs, and
    # Streamlit forgets a widget's value then (a new user found 1.00 back after trying 0.05).
    # After a reload (a new session) the address still names the training it started.
    defaults = st.session_state.get(LAST_SETTINGS) or yours or RETRAIN_DEFAULTS
    # Outside the form, so that the weight of saved samples shows only while they are included.
    include = st.toggle(
        "Include saved samples", value=defaults.user_samples, key="include_samples",
        help=f"Off by default: anyone can save samples, and wrong labels teach wrong digits. When on, "
             f"saved samples are at most {100 * MAX_SAMPLE_SHARE:g}% of the training set "
             f"({100 * MAX_SAMPLE_LABEL_SHARE:g}% per digit), newest first")
    with st.form("settings"):
        # Row by row: on a phone the columns stack, and a row's settings stay together in order
        # (three tall columns stacked read Network, Learning rate, Pen digits, Epochs, ...).
        first, second, third = st.columns(3), st.columns(3), st.columns(3)
        architecture = first[0].selectbox(
            "Network", list(ARCHITECTURES), index=list(ARCHITECTURES).index(defaults.architecture),
            help="; ".join(f"{name}: {note}" for name, note in ARCHITECTURE_NOTES.items()))
        epochs = first[1].number_input(
            "Epochs", *LIMITS["epochs"], value=defaults.epochs, step=1,
            help="How many times the network sees every training digit. More epochs learn more "
                 "and take proportionally longer")
        batch_size = first[2].select_slider(
            "Batch size", [32, 64, 128, 256, 512], value=defaults.batch_size,
            help="Digits looked at before each small change to the network: larger batches run "
                 "faster per epoch but learn less from each")
        learning_rate = second[0].select_slider(
            "Learning rate", [0.0003, 0.001, 0.002, 0.003, 0.005, 0.01], value=defaults.learning_rate,
            help="How big each change is. It warms up to this value, then falls smoothly to zero; "
                 "too high and training becomes unstable, too low and it learns slowly")
        mnist_share = second[1].slider(
            "Share of MNIST to use", 0.01, 1.0, defaults.mnist_fraction, 0.01,
            help="Of MNIST's 55,000 training digits (5,000 more are held back to check progress): "
                 "a small share trains in seconds, for trying settings out (making the candidate "
                 "ready, evaluating and calibrating it and fitting its not-a-digit head, takes a "
                 "minute or two more)")
        augment = second[2].toggle("Augmentation", value=defaults.augment,
                                   help="Each training digit randomly rotated, shifted, zoomed and "
                                        "drawn thicker or thinner")
        pendigits = third[0].toggle(
            "Pen digits", value=defaults.pendigits and pen_digits, key="pen_digits", disabled=not pen_digits,
            help="Real pen trajectories of pendigits writers 1-20, drawn on a canvas as visitors "
                 "draw (writers 21-30 are kept for testing)" + ("" if pen_digits else
                 ". This server does not have them: whoever runs it can add the pendigits file"))
        gate_head = third[1].toggle(
            "Not-a-digit head", value=defaults.gate_head and pen_digits, key="gate_head",
            disabled=not pen_digits,
            help="Fit the candidate its own head for telling drawings that are not digits (letters, "
                 "scribbles) from digits. It reads this candidate's features, so it cannot be "
                 "inherited; without it the inherited gate judges alone and lets more non-digits "
                 "through. About a minute more" + ("" if pen_digits else
                 ". It learns from the pen digits, which this server does not have"))
        weight = defaults.sample_weight
        if include:
            weight = third[2].number_input("Weight of each saved sample", *LIMITS["sample_weight"],
                                           value=defaults.sample_weight, key="sample_weight",
                                           help="How many times each saved sample is repeated")
        name = st.text_input("Your name (shown to others while you train)",
                             st.session_state.session_name, max_chars=40)
        password = st.text_input(
            "Admin password (only for more work than the defaults)", type="password",
            key="training_password") if password_configured else None
        if not st.form_submit_button("Start training", type="primary", disabled=disabled):
            return None
    # Shown to every visitor: kept to letters, digits and -.' (no Markdown links or images).
    st.session_state.session_name = visitor_name(name) or st.session_state.session_name
    # The preset with the form's choices: settings the form does not show keep the preset's values.
    config = dataclasses.replace(
        defaults, architecture=architecture, epochs=int(epochs), batch_size=int(batch_size),
        learning_rate=float(learning_rate), augment=augment, mnist_fraction=float(mnist_share),
        pendigits=pendigits, sample_weight=int(weight), user_samples=bool(include), gate_head=gate_head)
    st.session_state[LAST_SETTINGS] = config
    return config, include, password


def start(config, include, password=None):
    """Start a training job with this session's name, including saved samples if asked."""
    samples = None
    if include:
        try:
            samples = store().arrays()
        except DigitrecError as error:
            st.warning(f"Saved samples left out: {error}")
    try:
        job = manager.start(config, st.session_state.session_name, samples=samples,
                            password=password, configured_password=admin_password(),
                            client=st.session_state.setdefault("client_id", uuid.uuid4().hex),
                            database_url=samples_url())  # PostgreSQL: one training across replicas
    except DigitrecError as error:
        st.error(str(error))
        return
    st.query_params["job"] = job.token  # a reload keeps the URL, and with it control of the job
    st.rerun()  # show the running job (and no second Start) at once


CURVE_HEIGHT = 260  # px, axes included
SMALL_SET = 100  # digits: below this an accuracy's change is said to mean little (one is > 1 point)


@st.fragment(run_every=1.0)
def live_progress():
    """What the job says, progress bar, Stop and curves, refreshed every second while a job runs.

    Each part keeps its place from one state to the next (placeholders): a part that moves when
    the training ends stayed on the page twice, the old copy faded, until the page's run ended.
    """
    job = manager.current()
    if job is None:
        return
    state = job.snapshot()
    mine = st.query_params.get("job") == job.token
    owner = "you" if mine else f"`{visitor_name(state.owner)}`"  # plain text
    # The job's word first, then placeholders: a part written after the curves was blank while
    # they were drawn, and the finished message blinked at every refresh.
    status = st.container()  # always holds something: no blank moment, as an st.empty has
    bar, stop = st.empty(), st.empty()
    if state.state.active:
        status.info("Your training is running: watch it here, or stop it (what it learned is kept)."
                    if mine else f"A training by {owner} is running; one training at a time per "
                                 "server. You can watch it here.")
    elif state.state == JobState.FAILED:
        status.error(f"Training failed: {state.error}")
    elif state.version is None:  # multi-worker training: a worker other than the chief
        status.info(f"Training {ended_verb(state)} as a worker; the chief saves the candidate.")
    else:
        with status:
            whose = "Your training" if mine else f"The training by {owner}"  # maybe not this visitor
            st.success(f"{whose} {ended_verb(state)}: candidate **{state.version}** saved. "
                       "Its evaluation is below.")
            if state.warning:
                st.warning(state.warning, icon=":material/warning:")
    progress = state.progress
    if state.state.active:
        if state.finishing is not None:
            bar.progress(1.0, text=f"Training by {owner} done · making the candidate ready: "
                                   f"{state.finishing}…")
        elif progress is None:  # starting the process, reading the data, building the network: seconds
            waited = f"{max(0, round(time.time() - state.started))} s"
            bar.progress(0.0, text=f"Training started by {owner}: loading the training data… {waited}"
                         if state.counts is None else
                         f"Training started by {owner}: {sum(state.counts.values()):,} examples ready, "
                         f"building the network… {waited}")
        else:
            bar.progress(progress.fraction, text=(
                f"Training by {owner} · epoch {progress.epoch}/{progress.epochs} · "
                f"batch {progress.batch}/{progress.batches} · {time_left_text(progress.remaining)}"
                + (" · stopping after this batch" if state.state == JobState.STOPPING else "")))
        # Once the last batch is done there is nothing left to stop: the candidate is being made ready.
        if stop.button("Stop", disabled=not mine or state.state == JobState.STOPPING
                       or state.finishing is not None,
                       help="Ends after the current batch and keeps what was learned as a candidate"):
            job.stop()
    if state.curve:
        loss, accuracy = training_curves(state.curve, state.epochs)
        left, right = st.columns(2)
        left.altair_chart(loss, width="stretch", height=CURVE_HEIGHT)
        right.altair_chart(accuracy, width="stretch", height=CURVE_HEIGHT)
        st.caption(":blue[**training**]: the batches since the previous point · "
                   f":orange[**validation**]: {state.config.validation_size:,} held-back MNIST digits, "
                   "at the end of each epoch")
    if state.version is not None and st.session_state.get("evaluated") != state.version:
        st.session_state.evaluated = state.version
        st.rerun(scope="app")  # render the evaluation once, outside this fragment


def ended_verb(state) -> str:
    return "stopped early" if state.state == JobState.STOPPED else "finished"


@st.cache_data(show_spinner="Evaluating…", max_entries=8)
def evaluation(version, samples_count):
    """The served model's evaluation, cached per version and number of saved samples."""
    samples = store().arrays() if samples_count else None
    return evaluate_version(registry.version_path(version), samples)


def show_evaluation(version):
    """The candidate next to the active model: accuracy, per class, confusion, mistakes."""
    active = registry.active_version(required=False)
    try:
        count = store().count()
    except DigitrecError:
        count = 0
    try:
        candidate = evaluation(version, count)
    except DigitrecError as error:  # deleted on the Models page meanwhile, or unreadable
        st.warning(f"The candidate {version} cannot be evaluated: {error}")
        return
    try:
        baseline = evaluation(active, count) if active and active != version else None
    except DigitrecError as error:
        st.warning(f"The active model cannot be evaluated for comparison: {error}")
        baseline = None
    st.subheader(f"Candidate {version}")
    for message in candidate["missing"]:
        st.warning(message)
    columns = st.columns(max(len(candidate["reports"]), 1))
    used_samples = trained_on_samples(version)  # its card read once, not per set
    for column, (name, report) in zip(columns, candidate["reports"].items()):
        shown, options = accuracy_metric(name, report, baseline["reports"].get(name) if baseline else None,
                                         used_samples)
        column.metric(*shown, **options)
    losses = class_losses(candidate["reports"], baseline["reports"]) if baseline else []
    if losses:
        st.warning(loss_summary(version, active, losses), icon=":material/warning:")
    per_class = [(name, candidate["reports"][name]) for name in (MNIST_TEST, CANVAS)
                 if name in candidate["reports"]]
    if per_class:
        left, right = st.columns(2)
        left.markdown("**Per-digit accuracy %** (candidate, and its change from the active model)")
        rows = []
        for digit in range(10):
            row = {"digit": digit}
            for name, report in per_class:
                label = "MNIST" if name == MNIST_TEST else "canvas"
                row[label] = round(100 * report["per_class"][digit], 1)
                if baseline and name in baseline["reports"]:
                    row[f"{label} ±"] = round(100 * (report["per_class"][digit]
                                                      - baseline["reports"][name]["per_class"][digit]), 1)
            rows.append(row)
        left.dataframe(rows, hide_index=True)
    if MNIST_TEST in candidate["reports"]:
        report = candidate["reports"][MNIST_TEST]
        right.altair_chart(confusion_chart(report["confusion"]))
        st.markdown("**Misclassified test digits** (true → predicted)")
        if candidate["misclassified"]:  # one row that wraps: columns stacked one per row on a phone
            st.image([model_input_image(item["model_input"], scale=3) for item in candidate["misclassified"]],
                     caption=[f"{item['true']} → {item['predicted']}" for item in candidate["misclassified"]])
    if candidate.get("reliability"):
        st.markdown("**Is its confidence honest?** Per confidence bin, how often the answer was right "
                    "(a calibrated model's bars reach the diagonal).")
        charts = st.columns(len(candidate["reliability"]))
        for column, (name, rows) in zip(charts, candidate["reliability"].items()):
            column.altair_chart(reliability_chart(
                rows, f"{name}: calibration error {100 * candidate['ece'][name]:.2f}%"), width="stretch")
    configured = admin_password()
    password = st.text_input("Admin password", type="password", key="retrain_password") \
        if configured else None
    client = st.session_state.setdefault("client_id", uuid.uuid4().hex)

    def promote_for(chosen):
        return lambda: admin.promote(chosen, password, configured, client=client)

    show_message()
    if st.button(f"Promote {version} to active", disabled=version == active,
                 type="secondary" if losses else "primary",
                 help="Asks first: this candidate is worse on some digits" if losses else None):
        promote_clicked(version, registry.models_dir(), promote_for(version), losses)
    ask_pending(promote_for)


@st.fragment(run_every=1.0)
def cooldown_notice(configured: bool):
    """Counts down the cool-down after a training, before anyone clicks Start; at zero the page
    reruns, and the Start button is enabled."""
    left = manager.cooldown_left()
    if left <= 0:
        st.rerun(scope="app")
    st.info(f"A training just ended: the next one can start in {math.ceil(left)} s"
            + (" (at once with the admin password)." if configured else "."), icon=":material/timer:")


def accuracy_metric(name: str, report: dict, active: dict | None, trained_on_samples: bool) -> tuple:
    """st.metric's arguments for one set's accuracy: a percentage and its change in points, or,
    on fewer than SMALL_SET digits, the count right ("1 of 2": 50.00% was false precision)."""
    count = report.get("count", 0)
    right = round(report["accuracy"] * count)
    few = 0 < count < SMALL_SET
    delta, arrow = None, "auto"
    if active is not None:
        change = right - round(active["accuracy"] * active.get("count", count)) if few else \
            round(100 * (report["accuracy"] - active["accuracy"]), 2)
        delta = ("same as active" if not change else f"{change:+d} vs active" if few
                 else f"{change:+.2f} pts vs active")
        arrow = "auto" if change else "off"
    explained = f"{count:,} digits" + (", too few for a percentage to mean much" if few else "")
    if name == SAVED_SAMPLES and trained_on_samples:
        explained += ". It trained on them, so this is no test on drawings it never saw"
    shown = (f"{name} ({count:,})" if name == SAVED_SAMPLES else name,  # the only set whose size varies
             f"{right} of {count} right" if few else f"{100 * report['accuracy']:.2f}%", delta)
    return shown, {"delta_color": "off" if delta == "same as active" else "normal",
                   "delta_arrow": arrow, "help": explained}


def trained_on_samples(version: str) -> bool:
    try:
        return model_card.read(registry.version_path(version)).training.used_samples
    except DigitrecError:
        return False


def start_section(current):
    """The settings form, or what is running instead."""
    if current is not None and current.running:
        return  # the live progress says who is training; one training at a time per server
    source = mnist_source(os.environ.get("DIGITREC_MNIST_DIR"), str(data.keras_mnist_path()))
    if isinstance(source, str):  # what whoever runs this server can do about it
        st.error(f"Training is not available on this server. {source}", icon=":material/cloud_off:")
        if st.button("Check again"):
            mnist_source.clear()
            st.rerun()
    else:
        st.caption(source.describe())
    pen_digits = data.default_pendigits_path().is_file()
    if not pen_digits:
        st.caption("Pen digits: not on this server, so a candidate trains on MNIST alone, is not "
                   "checked on held-out pen writers, and gets no not-a-digit head of its own (it "
                   "could not learn what drawings look like): the inherited gate judges alone.")
    configured = admin_password() is not None
    cooling = manager.cooldown_left() > 0
    if cooling:
        cooldown_notice(configured)
    st.caption("Anyone may start a training of about as much work as these defaults (more epochs, "
               "more examples, the deep network and augmentation all count), and a new one "
               f"{TRAINING_COOLDOWN_S} s after the last one ended"
               + ("; more needs the admin password." if configured else
                  "; larger trainings only whoever runs this server can start."))
    try:
        yours = current.config if current is not None and st.query_params.get("job") == current.token \
            else None
        # Visitors wait out the cool-down (the notice above counts it down); an admin need not.
        submitted = settings_form(disabled=isinstance(source, str) or (cooling and not configured),
                                  password_configured=configured,
                                  pen_digits=pen_digits, yours=yours)
    except ValueError as error:
        st.error(f"Invalid settings: {error}")
        submitted = None
    if submitted:
        start(*submitted)


current = manager.current()
# Your own training, done: its result first, then the form to train another (above it, the form
# pushed the result below the fold). The live progress stays the page's second block either way,
# so the fragment keeps its place while the page changes over (a moved fragment showed twice).
yours_done = (current is not None and not current.running and current.snapshot().version is not None
              and st.query_params.get("job") == current.token)
form_first, progress_block, result_block, form_last = (st.container() for _ in range(4))
if not yours_done:
    with form_first:
        start_section(current)
with progress_block:
    live_progress()
finished = manager.current()
if finished is not None and finished.snapshot().version:
    with result_block:
        show_evaluation(finished.snapshot().version)
if yours_done:  # drawn after the evaluation, which it follows on the page
    with form_last:
        st.subheader("Train another")
        start_section(current)
