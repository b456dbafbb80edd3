"""examples/: every journey runs end to end in its `--smoke` size, in its own process.

Each example runs as a user runs it (`python examples/<name>.py --smoke`) with
`--output` in a temp folder; the test checks the exit status, the files it says it
writes (PNGs non-empty and named in its docstring), the printed table, and a number
or two that must hold even in a tiny run (features loaded back by revision equal
the pushed ones; two devices were used). The whole set takes several minutes
(each process traces its models afresh), so those runs are `slow`: `make
test-examples` runs them and CI runs that target. The check that every example is
documented and linked from the README is fast and in the default suite.
"""

import ast
import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
OFFICIAL_FIXTURES = REPO / "tests" / "data" / "official" / "dino_vit"

# example -> (files it writes, lines its output must contain)
EXPECTED = {
    "pretrain_simclr": (
        ["views.png", "training.png", "encoder.keras", "simclr.keras", "results.json"],
        ["| epoch | kNN accuracy (k=200) |"],
    ),
    "compare_methods": (["methods.png", "results.json"], ["| method | kNN accuracy (k=20) |"]),
    "transfer_dino": (
        ["attention.png", "finetuning.png", "results.json"],
        ["| model | labels | test accuracy |", "from scratch |"],
    ),
    "clip_captions": (
        ["retrieval.png", "training.png", "clip.keras", "results.json", "smoke_pairs/pairs.csv"],
        ["| direction | recall@1 | recall@5 |", "zero-shot accuracy over 10 class names"],
    ),
    "mae_reconstruct": (
        ["reconstructions_before.png", "reconstructions.png", "training.png", "mae.keras",
         "results.json"],
        ["| encoder | test accuracy |", "| MAE pretrained |", "| random init |"],
    ),
    "publish_to_hub": (
        ["card.md", "results.json"],
        ["| loaded | max abs difference from the pushed features |", "trained it one more epoch"],
    ),
    "multi_device": (["training.png", "results.json"], ["| epoch | loss | images/s |"]),
}

def docstring(name):
    return ast.get_docstring(ast.parse((EXAMPLES / f"{name}.py").read_text()))


def run_example(name, output, backend=None):
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    if backend:
        env["KERAS_BACKEND"] = backend
    process = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--smoke", "--output", str(output)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert process.returncode == 0, (
        f"examples/{name}.py --smoke exited with {process.returncode}:\n"
        f"{process.stdout[-3000:]}\n{process.stderr[-6000:]}"
    )
    return process.stdout


def check_outputs(name, output, stdout):
    files, lines = EXPECTED[name]
    for file in files:
        path = output / file
        assert path.is_file() and path.stat().st_size > 0, f"{name}: {file} not written"
    for png in output.glob("*.png"):
        assert png.name in docstring(name), f"{name} writes {png.name} but its docstring omits it"
    for line in lines:
        assert line in stdout, f"{name}: {line!r} not printed; output:\n{stdout[-3000:]}"
    return json.loads((output / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", [n for n in EXPECTED if n not in ("transfer_dino", "compare_methods", "multi_device", "publish_to_hub")]
)
def test_example_runs_in_smoke_mode(name, tmp_path):
    check_outputs(name, tmp_path, run_example(name, tmp_path))


@pytest.mark.slow
def test_publish_to_hub_loads_back_each_revision_exactly(tmp_path):
    stdout = run_example("publish_to_hub", tmp_path)
    results = check_outputs("publish_to_hub", tmp_path, stdout)
    assert len(results["max_abs_difference"]) == 3
    assert max(results["max_abs_difference"].values()) <= 1e-4, results
    assert "kerassl" in (tmp_path / "card.md").read_text()


@pytest.mark.slow
def test_compare_methods_scores_every_method_of_its_table(tmp_path):
    stdout = run_example("compare_methods", tmp_path)
    results = check_outputs("compare_methods", tmp_path, stdout)
    spec = importlib.util.spec_from_file_location("compare_methods", EXAMPLES / "compare_methods.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = results["digits"]["rows"]
    assert list(rows) == ["random init", *module.METHODS]
    for method in module.METHODS:
        assert f"| {method} |" in stdout
        assert 0.0 <= rows[method]["knn_accuracy"] <= 1.0


@pytest.mark.slow
@pytest.mark.skipif(
    not OFFICIAL_FIXTURES.is_dir(),
    reason="needs the stand-in official checkpoints (tests/data/official/, branch official-checkpoints)",
)
def test_transfer_dino_loads_the_official_preset_through_the_local_hub(tmp_path):
    check_outputs("transfer_dino", tmp_path, run_example("transfer_dino", tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_multi_device_trains_on_two_virtual_devices(backend, tmp_path):
    results = check_outputs("multi_device", tmp_path, run_example("multi_device", tmp_path, backend))
    assert results["backend"] == backend and results["devices"] == 2
    assert results["policy"] == "mixed"


def test_every_example_is_documented_and_has_a_smoke_mode():
    names = sorted(p.stem for p in EXAMPLES.glob("*.py") if p.stem != "smoke")
    assert names == sorted(EXPECTED)
    for name in names:
        text = docstring(name)
        for section in ("What it shows", "What it needs", "What it prints and writes", "--smoke"):
            assert section in text, f"examples/{name}.py: docstring lacks {section!r}"
        assert f"examples/{name}.py" in (REPO / "README.md").read_text(), f"README omits {name}"
