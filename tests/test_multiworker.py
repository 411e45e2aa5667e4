"""Training on several machines, for real: two `python -m digitrec train` workers on 127.0.0.1,
each with its own TF_CONFIG (MultiWorkerMirroredStrategy), tiny data and one epoch. Both must
finish, in step (the same averaged loss), only the chief (worker 0) may write a model folder,
and that model must load and read. README's "More than one machine" shows the same command pair.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TRAIN = ["--architecture", "shallow", "--epochs", "1", "--mnist-fraction", "0.02", "--no-augment",
         "--no-pendigits", "--batch-size", "64", "--version", "together"]


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_two_workers_train_one_model_and_only_the_chief_saves_it(tmp_path, mnist_dir):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "TF_CPP_MIN_LOG_LEVEL": "2",
               "DIGITREC_MNIST_DIR": str(mnist_dir)}
        log = open(tmp_path / f"worker{index}.log", "w")
        command = [sys.executable, "-m", "digitrec", "train", *TRAIN,
                   "--models-dir", str(tmp_path / f"models{index}")]
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        processes.append((process, log))
    try:
        codes = [process.wait(timeout=420) for process, _ in processes]
    finally:
        for process, log in processes:
            process.kill()
            log.close()
    logs = [(tmp_path / f"worker{index}.log").read_text(errors="replace") for index in range(2)]
    assert codes == [0, 0], "\n\n".join(log[-2000:] for log in logs)
    assert re.search(r"^saved .*together$", logs[0], re.M)
    assert "trained as a worker; the chief (worker 0) saves the model folder" in logs[1]
    # Only the chief wrote anything: the other worker's model folder was never even created.
    assert not (tmp_path / "models1").exists()
    folder = tmp_path / "models0" / "together"
    assert sorted(path.name for path in (tmp_path / "models0").iterdir()) == ["together"]
    # In step: each epoch's loss is averaged across the workers, so both report the same one.
    losses = [re.findall(r"\bloss: ([0-9.]+)", log)[-1] for log in logs]
    assert losses[0] == losses[1], losses
    from digitrec import Recognizer, registry

    card = registry.read_card(folder)
    assert card["training"]["epochs_done"] == 1 and np.isfinite(card["training"]["history"]["loss"][0])
    recognizer = Recognizer.load(folder)
    prediction = recognizer.predict(np.eye(28, dtype=np.float32))
    assert prediction.probabilities is None or len(prediction.probabilities) == 10
