"""The benchmark harness keeps working: its kNN protocol and a smoke run of the entry point.

Timing is never asserted; these tests check that the pipeline runs end to end and
writes well-formed results (kerassl side only: the lightly peer venv is not needed).
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import shared  # noqa: E402


def brute_force_knn(bank, bank_labels, queries, query_labels, k, temperature, num_classes):
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    correct = 0
    for query, label in zip(queries, query_labels):
        sims = bank @ query
        nearest = np.argsort(-sims, kind="stable")[:k]
        scores = np.zeros(num_classes)
        for index in nearest:
            scores[bank_labels[index]] += np.exp(sims[index] / temperature)
        correct += int(np.argmax(scores) == label)
    return correct / len(queries)


@pytest.mark.parametrize("k,temperature,chunk", [(1, 0.1, 7), (5, 0.5, 100), (40, 0.07, 3)])
def test_knn_accuracy_matches_brute_force(k, temperature, chunk):
    rng = np.random.default_rng(k)
    centers = rng.normal(size=(4, 6))
    bank_labels = rng.integers(0, 4, 40)
    query_labels = rng.integers(0, 4, 25)
    bank = centers[bank_labels] + rng.normal(size=(40, 6))
    queries = centers[query_labels] + rng.normal(size=(25, 6))
    expected = brute_force_knn(bank, bank_labels, queries, query_labels, k, temperature, 4)
    got = shared.knn_accuracy(bank, bank_labels, queries, query_labels, k=k,
                              temperature=temperature, num_classes=4, chunk=chunk)
    assert got == pytest.approx(expected)
    assert 0.3 < got <= 1.0  # clustered data: well above chance (0.25)


def test_summarize_step_times_drops_warmup():
    summary = shared.summarize_step_times([30.0, 2.0, 1.0, 1.0, 3.0], 8, 1, [9, 4, 2, 2, 2])
    assert summary["median_step_s"] == 1.5
    assert summary["images_per_s"] == pytest.approx(8 / 1.5)
    assert summary["images_per_cpu_s"] == pytest.approx(4.0)
    assert summary["first_step_s"] == 30.0


def test_smoke_suite_runs_and_writes_results(tmp_path):
    backend = keras.config.backend()
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--suite", "smoke", "--sides", "kerassl",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (json_file,) = tmp_path.glob("*-smoke.json")
    (md_file,) = tmp_path.glob("*-smoke.md")
    report = json.loads(json_file.read_text())
    assert report["machine"]["cpu_count"] >= 1
    assert len(report["machine"]["load_average_start"]) == 3

    (throughput,) = report["throughput"]
    result = throughput["result"]
    assert "error" not in result, result
    assert result["versions"]["backend"] == backend
    assert result["images_per_s"] > 0 and result["peak_rss_mib"] > 0
    assert len(result["step_times_s"]) == 3  # 1 warm-up + 2 timed

    (quality,) = report["quality"]
    result = quality["result"]
    assert "error" not in result, result
    for key in ("knn_accuracy", "knn_accuracy_random_init"):
        assert 0.0 <= result[key] <= 1.0
    assert result["steps"] == 128 // 32

    table = md_file.read_text()
    assert throughput["name"] in table and quality["name"] in table
