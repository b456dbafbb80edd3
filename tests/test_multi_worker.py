"""MultiWorkerMirroredStrategy: one SimCLR step on 2 workers equals one device on the global batch.

Two worker processes (one CPU device each) talk over loopback (127.0.0.1, free
ports, `TF_CONFIG`), a third process trains on one device; each writes its loss
and weights (`multi_worker_step.py`). Every process has a time limit and is
killed at the end whatever happened. Slow (about 25 s idle, 55 s on a loaded
2-core machine: three TensorFlow start-ups), so `make test-slow-tf` runs it,
not `make test`. TensorFlow only: JAX's multi-host path is
`keras.distribution.initialize`, which needs a coordinator this test does not
start.
"""

import os
import pathlib
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT = 240  # seconds for all three processes together
RTOL = 1e-5


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start(out, tf_config=None, log=None):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "KERASSL_TEST_DEVICES", "XLA_FLAGS")}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    if tf_config:
        env["TF_CONFIG"] = tf_config
    return subprocess.Popen(
        [sys.executable, "-m", "tests.multi_worker_step", str(out)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def run_all(tmp_path):
    import json

    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    outs = [tmp_path / f"worker{i}.npz" for i in range(2)] + [tmp_path / "reference.npz"]
    logs = [open(tmp_path / f"{out.stem}.log", "w") for out in outs]
    processes = [
        start(outs[i], json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}), logs[i])
        for i in range(2)
    ] + [start(outs[2], None, logs[2])]
    deadline = time.monotonic() + TIMEOUT
    try:
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()
    failed = [(out.stem, p.returncode) for out, p in zip(outs, processes) if p.returncode != 0]
    if failed:
        tails = "\n".join(
            f"--- {name} (exit {code}):\n" + (tmp_path / f"{name}.log").read_text()[-3000:]
            for name, code in failed
        )
        pytest.fail(f"processes failed or timed out after {TIMEOUT} s:\n{tails}")
    return [dict(np.load(out)) for out in outs]


def weights(result, prefix):
    keys = sorted((k for k in result if k.startswith(prefix)), key=lambda k: int(k.split("_")[1]))
    return [result[k] for k in keys]


@pytest.mark.slow
@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="MultiWorkerMirroredStrategy is TensorFlow's")
def test_one_step_on_2_workers_equals_one_device_on_the_global_batch(tmp_path):
    began = time.monotonic()
    worker0, worker1, reference = run_all(tmp_path)
    assert int(worker0["replicas"]) == 2 and int(reference["replicas"]) == 1
    for a, b, c in zip(weights(worker0, "start_"), weights(worker1, "start_"), weights(reference, "start_")):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    np.testing.assert_allclose(worker0["loss"], reference["loss"], rtol=RTOL)
    np.testing.assert_allclose(worker1["loss"], reference["loss"], rtol=RTOL)
    start = np.concatenate([w.ravel() for w in weights(reference, "start_") if w.dtype.kind == "f"])
    one = np.concatenate([w.ravel() for w in weights(reference, "after_") if w.dtype.kind == "f"])
    for worker in (worker0, worker1):
        many = np.concatenate([w.ravel() for w in weights(worker, "after_") if w.dtype.kind == "f"])
        assert np.linalg.norm(one - start) > 1e-4, "the step changed nothing: the comparison proves nothing"
        weight_gap = np.linalg.norm(many - one) / np.linalg.norm(one)
        update_gap = np.linalg.norm((many - start) - (one - start)) / np.linalg.norm(one - start)
        assert weight_gap <= RTOL, f"weights differ by {weight_gap:.2e} (relative)"
        assert update_gap <= 1e-3, f"the update differs by {update_gap:.2e} (relative)"
    print(f"2 workers vs one device: loss {float(reference['loss']):.6f} vs {float(worker0['loss']):.6f}, "
          f"weights {weight_gap:.1e}, update {update_gap:.1e} relative gap, {time.monotonic() - began:.0f} s")
