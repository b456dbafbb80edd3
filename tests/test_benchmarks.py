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

import run  # noqa: E402
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


def fake_row(name, side, method, mode=None, images_per_s=10.0):
    config = {"method": method, "precision": "float32", "mode": mode}
    result = {"images_per_s": images_per_s, "images_per_cpu_s": images_per_s / 2}
    return {"name": name, "side": side, "config": config, "result": result}


def test_ratios_compare_with_lightly_rows_of_the_same_method():
    report = {"quality": [], "throughput": [
        fake_row("kerassl tensorflow jit off float32", "kerassl", "simclr", images_per_s=30.0),
        fake_row("lightly loader+step float32", "lightly", "simclr", "loader", 10.0),
        fake_row("lightly step alone float32", "lightly", "simclr", "step", 20.0),
        fake_row("mae kerassl tensorflow jit off float32", "kerassl", "mae", images_per_s=30.0),
        fake_row("mae lightly loader+step float32", "lightly", "mae", "loader", 60.0),
        fake_row("mae lightly step alone float32", "lightly", "mae", "step", 120.0),
        fake_row("dino kerassl tensorflow jit off float32", "kerassl", "dino", images_per_s=30.0),
    ]}
    del report["throughput"][0]["config"]["method"]  # rows written before the key: SimCLR
    run.add_ratios(report)
    simclr, mae, dino = (report["throughput"][i] for i in (0, 3, 6))
    assert simclr["ratio_vs_lightly"] == pytest.approx(3.0)
    assert simclr["cpu_ratio_vs_lightly_step"] == pytest.approx(1.5)
    assert mae["ratio_vs_lightly"] == pytest.approx(0.5)
    assert mae["cpu_ratio_vs_lightly_step"] == pytest.approx(0.25)
    assert "ratio_vs_lightly" not in dino  # no DINO lightly row: no ratio, never SimCLR's


def test_vit_rows_get_their_own_configuration():
    args = run.parse_args(["--suite", "cpu", "--timed-steps", "4"])
    configs = run.base_configs(run.SUITES["cpu"], args)
    rows = run.throughput_rows("cpu", "tensorflow")
    mae_rows = [r for r in rows if "mae" in r[0]]
    assert [r[0] for r in mae_rows] == [
        "mae kerassl tensorflow jit off float32", "mae kerassl tensorflow jit on float32",
        "mae kerassl jax jit on float32", "mae lightly loader+step float32",
        "mae lightly step alone float32",
    ]
    for name, _, overrides, _ in rows:
        config = dict(configs[run.config_key("throughput", overrides)], **overrides)
        method = name.split()[0] if name.split()[0] in ("mae", "dino") else "simclr"
        assert config["method"] == method and config["timed_steps"] in (2, 4)
        assert config["encoder"] == ("vit" if method != "simclr" else "resnet18")
    assert configs["dino_throughput"]["learning_rate"] == 5e-4
    assert configs["throughput"]["learning_rate"] == 0.06


def quality_row(name, side, method, accuracy):
    return {"name": name, "side": side, "config": {"method": method},
            "result": {"knn_accuracy": accuracy}}


def test_quality_ratios_compare_with_lightly_row_of_the_same_method():
    report = {"throughput": [], "quality": [
        quality_row("kerassl tensorflow jit off", "kerassl", "simclr", 0.6),
        quality_row("lightly", "lightly", "simclr", 0.8),
        quality_row("mae kerassl tensorflow jit off", "kerassl", "mae", 0.3),
        quality_row("mae lightly", "lightly", "mae", 0.2),
        quality_row("dino kerassl tensorflow jit off", "kerassl", "dino", 0.3),
    ]}
    run.add_ratios(report)
    simclr, _, mae, _, dino = report["quality"]
    assert simclr["ratio_vs_lightly"] == pytest.approx(0.75)
    assert mae["ratio_vs_lightly"] == pytest.approx(1.5)
    assert "ratio_vs_lightly" not in dino  # no DINO lightly row: no ratio, never SimCLR's


def test_vit_quality_rows_get_their_own_configuration():
    for suite, size, epochs in (("cpu", 5000, 2), ("gpu", 50000, 100)):
        configs = run.base_configs(run.SUITES[suite], run.parse_args(["--suite", suite]))
        rows = run.quality_rows(suite, "jax")
        assert [r[0] for r in rows if r[0].startswith("mae")] == [
            "mae kerassl " + ("tensorflow jit off" if suite == "cpu" else "jax jit on"),
            "mae lightly",
        ]
        for name, _, overrides, _ in rows:
            config = dict(configs[run.config_key("quality", overrides)], **overrides)
            method = name.split()[0] if name.split()[0] in ("mae", "dino") else "simclr"
            assert config["method"] == method and config["task"] == "quality"
            if method != "simclr":
                assert config["encoder"] == "vit" and config["hidden_dim"] == 192
                assert (config["train_size"], config["epochs"]) == (size, epochs)
                assert config["knn_k"] == 200 and "timed_steps" not in config
        assert configs["dino_quality"]["learning_rate"] == 5e-4


# Slow (CI's slow TensorFlow run): 178 s on TensorFlow and 272 s on JAX, the largest
# share of `make test`, for a check of the benchmark driver rather than the library.
@pytest.mark.slow
def test_smoke_suite_runs_and_writes_results(tmp_path):
    backend = keras.config.backend()
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--suite", "smoke", "--sides", "kerassl",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "KERAS_BACKEND": backend},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (json_file,) = tmp_path.glob("*-smoke.json")
    (md_file,) = tmp_path.glob("*-smoke.md")
    report = json.loads(json_file.read_text())
    assert report["machine"]["cpu_count"] >= 1
    assert len(report["machine"]["load_average_start"]) == 3

    throughput, mae, dino = report["throughput"]
    result = throughput["result"]
    assert "error" not in result, result
    assert result["versions"]["backend"] == backend
    assert result["images_per_s"] > 0 and result["peak_rss_mib"] > 0
    assert len(result["step_times_s"]) == 3  # 1 warm-up + 2 timed

    for row, method in ((mae, "mae"), (dino, "dino")):
        result = row["result"]
        assert "error" not in result, result
        assert row["name"].startswith(f"{method} kerassl {backend} ")
        assert row["config"]["method"] == method and row["config"]["encoder"] == "vit"
        assert result["versions"]["backend"] == backend and result["images_per_s"] > 0
        assert len(result["step_times_s"]) == 2  # 1 warm-up + 1 timed
        # The ViT encoder, then the whole trained model (decoder, or student head).
        assert 0 < result["parameters"] < result["trainable_parameters"]
    assert dino["result"]["default_local_crop_size"] == dino["config"]["local_crop_size"]

    quality, mae_quality, dino_quality = report["quality"]
    result = quality["result"]
    assert "error" not in result, result
    for key in ("knn_accuracy", "knn_accuracy_random_init"):
        assert 0.0 <= result[key] <= 1.0
    assert result["steps"] == 128 // 32

    for row, method in ((mae_quality, "mae"), (dino_quality, "dino")):
        result = row["result"]
        assert "error" not in result, result
        assert row["name"].startswith(f"{method} kerassl {backend} ")
        assert row["config"]["method"] == method and row["config"]["encoder"] == "vit"
        assert row["config"]["image_size"] == 16 and row["config"]["knn_k"] == 5
        for key in ("knn_accuracy", "knn_accuracy_random_init"):
            assert 0.0 <= result[key] <= 1.0
        assert result["steps"] == 32 // 8
        assert 0 < result["parameters"] < result["trainable_parameters"]
    assert 0.0 <= dino_quality["result"]["knn_accuracy_student"] <= 1.0

    table = md_file.read_text()
    for row in (throughput, mae, dino, quality, mae_quality, dino_quality):
        assert row["name"] in table
    assert "## MAE train-step throughput" in table and "## DINO train-step throughput" in table
    for title in ("SimCLR", "MAE", "DINO"):
        assert f"## {title} kNN accuracy at equal budget" in table


def test_the_gpu_check_plans_simclr_and_dino_in_both_precisions_against_lightly(tmp_path):
    """The rows `benchmarks/gpu_check.sh` asks run.py for (its THROUGHPUT_ARGS), planned
    without running anything; and the script's own dry run passes."""
    script = (BENCHMARKS / "gpu_check.sh").read_text()
    args = [
        "--suite", "gpu", "--only", "throughput", "--sides", "kerassl,lightly",
        "--rows", "kerassl tensorflow jit on,lightly loader+step", "--skip", "mae",
        "--warmup-steps", "3", "--timed-steps", "10", "--timeout", "60",
    ]
    assert '--rows "kerassl tensorflow jit on,lightly loader+step" --skip mae' in script
    planned = run.main([*args, "--out", str(tmp_path), "--dry-run"])["rows"]
    for method in ("", "dino "):
        for precision in ("float32", "bfloat16"):
            assert f"{method}kerassl tensorflow jit on {precision}" in planned
            assert f"{method}lightly loader+step {precision}" in planned
    assert len(planned) == 8 and not any("mae" in row for row in planned)
    dry = subprocess.run(
        ["bash", str(BENCHMARKS / "gpu_check.sh")], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, DRY_RUN="1", DRY_RUN_PYTHON=sys.executable, KERASSL_GPU_VENV=str(tmp_path / "none")),
    )
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dino lightly loader+step bfloat16" in dry.stdout


@pytest.mark.slow  # 24 s on TensorFlow, 41 s on JAX: a benchmark driver's check
def test_cifar10_table_smoke_runs_a_staple_row():
    """`benchmarks/cifar10_table.py --smoke`: a row of lightly's CIFAR-10 table, end to end, tiny."""
    import cifar10_table
    import staples_step

    (result,) = cifar10_table.smoke(("byol",))
    assert result["method"] == "byol" and result["steps"] == 64 // 16
    for key in ("knn_accuracy", "knn_accuracy_random_init"):
        assert 0.0 <= result[key] <= 1.0
    assert np.isfinite(result["history"][-1]["loss"])
    # Every staple has a row command with the table's settings (batch 512, 200 epochs, k=200).
    for method in staples_step.METHODS:
        command = cifar10_table.row_command(method)
        for flag, value in (("--batch", "512"), ("--epochs", "200"), ("--knn-k", "200"),
                            ("--recipe", "cifar10"), ("--methods", method)):
            assert command[command.index(flag) + 1] == value


def test_torch_init_draws_the_convs_as_pytorch_does():
    """`staples_step --init torch`: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) per conv, as nn.Conv2d."""
    import staples_step

    import kerassl

    encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3), stem="cifar", width=16)
    convs = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    before = [keras.ops.convert_to_numpy(layer.kernel) for layer in convs]
    staples_step.torch_default_conv_init(encoder, seed=0)
    for layer, old in zip(convs, before):
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        fan_in = int(np.prod(kernel.shape[:-1]))
        assert np.abs(kernel).max() <= 1 / np.sqrt(fan_in)
        if kernel.size >= 2000:  # enough draws for the standard deviation to be close
            assert np.std(kernel) == pytest.approx(1 / np.sqrt(3 * fan_in), rel=0.05)
            # kerassl's own draw (torchvision's fan-out normal) is wider by about sqrt(6) for 3x3s
            if kernel.shape[:2] == (3, 3) and kernel.shape[2] == kernel.shape[3]:
                assert np.std(old) / np.std(kernel) == pytest.approx(6**0.5, rel=0.1)
