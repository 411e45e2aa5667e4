"""Training events: JSON lines both ways, progress computed once, and a worker that is not the chief."""

import collections
import threading
import time
import types

import pytest

from digitrec import jobs
from digitrec.config import TrainingConfig
from digitrec.events import (
    EVENT_TYPES,
    BatchProgress,
    DataReady,
    EpochEnd,
    Failed,
    Finishing,
    FinishingStep,
    JobState,
    Saved,
    TrainedAsWorker,
    Usage,
    decode,
    encode,
)

EXAMPLES = [DataReady({"mnist": 55000, "pendigits": 9992}),
            BatchProgress(2, 4, 5, 10, 12.5, None, 0.4, 0.9),
            EpochEnd(1, 4, 0.5, 0.9, None, 0.95), Saved("v1", {"mnist_test_accuracy": 0.99}),
            TrainedAsWorker(), Failed("no MNIST"), Usage(950.5), Finishing(FinishingStep.GATE_HEAD)]


def test_every_event_type_survives_a_json_line():
    assert {type(event) for event in EXAMPLES} == set(EVENT_TYPES.values())
    for event in EXAMPLES:
        line = encode(event)
        assert "\n" not in line
        assert decode(line) == event


def test_a_finishing_step_comes_back_as_the_enum():
    event = decode(encode(Finishing(FinishingStep.CALIBRATING)))
    assert event.step is FinishingStep.CALIBRATING
    with pytest.raises(ValueError, match="not a training event"):
        decode('{"type":"Finishing","step":"knitting"}')


@pytest.mark.parametrize("line", ["", "{}", '{"type": "Nope"}', '{"type": "Failed"}', "[1]", "stop"])
def test_what_is_not_an_event_is_a_value_error(line):
    with pytest.raises(ValueError, match="not a training event"):
        decode(line)


def test_progress_position_and_fraction():
    progress = BatchProgress(epoch=2, epochs=4, batch=5, batches=10, elapsed=1.0, remaining=None,
                             loss=0.1, accuracy=0.9)
    assert progress.position == 1.5 and progress.fraction == 0.375
    assert "position" not in encode(progress)  # derived, not sent
    last = BatchProgress(4, 4, 10, 10, 1.0, 0.0, 0.1, 0.9)
    assert last.fraction == 1.0


def test_job_states_say_whether_the_job_is_still_going():
    assert {state for state in JobState if state.active} == {JobState.STARTING, JobState.RUNNING,
                                                              JobState.STOPPING}
    assert JobState("running") is JobState.RUNNING and f"{JobState.FAILED}" == "failed"


def test_a_worker_that_is_not_the_chief_says_so_and_saves_nothing(monkeypatch, tmp_path):
    """finish_candidate on worker 1 of a multi-worker run: a TrainedAsWorker event, no folder."""
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", '
                                    '"index": 1}}')
    monkeypatch.setattr(jobs, "held_out_pendigits", lambda: None)
    monkeypatch.setattr(jobs, "evaluate_model", lambda *args: {})
    monkeypatch.setattr(jobs, "build_card", lambda *args: {})
    saved = []
    monkeypatch.setattr(jobs.registry, "save_model", lambda *args: saved.append(args))
    events = []
    trained = jobs.TrainedCandidate(None, types.SimpleNamespace(model=None), ((), ()))
    assert jobs.finish_candidate(TrainingConfig(), trained, tmp_path, on_progress=events.append) is None
    assert events == [Finishing(FinishingStep.EVALUATING), TrainedAsWorker()] and saved == []


def job_at(state: JobState) -> jobs.TrainingJob:
    """A TrainingJob's state machine without its process."""
    job = jobs.TrainingJob.__new__(jobs.TrainingJob)
    job._lock = threading.Lock()
    job._snapshot = jobs.JobSnapshot(state, "alice", time.time(), TrainingConfig())
    job._curve, job._epochs = collections.deque(), []
    return job


@pytest.mark.parametrize(("before", "after"), [(JobState.RUNNING, JobState.FINISHED),
                                               (JobState.STOPPING, JobState.STOPPED)])
def test_a_job_that_trained_as_a_worker_ends_without_a_candidate(before, after):
    job = job_at(before)
    job._apply(TrainedAsWorker())
    snapshot = job.snapshot()
    assert snapshot.state == after and snapshot.version is None and not snapshot.state.active


def test_a_job_follows_its_events():
    job = job_at(JobState.STARTING)
    job._apply(DataReady({"mnist": 10}))
    assert job.snapshot().state == JobState.RUNNING and job.snapshot().counts == {"mnist": 10}
    progress = BatchProgress(1, 1, 1, 2, 0.1, None, 1.0, 0.5)
    job._apply(progress)
    assert job.snapshot().progress == progress and job.snapshot().curve == (progress,)
    job._apply(Saved("v1", {"mnist_test_accuracy": 0.9}))
    assert job.snapshot().state == JobState.FINISHED and job.snapshot().version == "v1"
