#!/usr/bin/env bash
# The GPU check of issue 17: one prepared command, under 8 minutes on one GPU.
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# Stages, each under its own time limit (the whole run stays under BUDGET_S, 470 s):
#   install     the `gpu` extra in $KERASSL_GPU_VENV (default .venv-gpu; reused if present)
#   devices     TensorFlow and JAX each list the GPU; `kerassl info`
#   tests       a GPU subset of the suite: jit_compile="auto", mixed precision (SimCLR, DINO,
#               MAE, both policies), finetune, on TensorFlow; jit "auto" and a SimCLR fit on JAX
#   finetune    `kerassl.finetune` with XLA ("auto" must pick it on a GPU) against without
#   throughput  SimCLR (ResNet-18) and DINO (ViT-tiny) against lightly, float32 and bfloat16
#               (benchmarks/run.py --suite gpu; rows that do not fit in time are left out)
#               The rows: SimCLR (ResNet-18) and DINO (ViT-tiny), kerassl on TensorFlow with XLA
#               and lightly, each in float32 and bfloat16 (8 rows, MAE left out for time).
# Environment: BUDGET_S (470), KERASSL_GPU_VENV, STAGES (a subset, in order), OUT,
#   DRY_RUN=1: check the script without a GPU or network (bash -n, the stage plan and
#   its limits, the throughput rows run.py would run); runs nothing else.
# Results: $OUT/gpu_check.json (or benchmarks/results/gpu_check-<date>.json): every stage's
# exit status, seconds and last lines of output, the devices, and the throughput rows.
set -u
cd "$(dirname "$0")/.."
BUDGET_S=${BUDGET_S:-470}
VENV=${KERASSL_GPU_VENV:-.venv-gpu}
RESULTS=${OUT:-benchmarks/results}
mkdir -p "$RESULTS"
WORK=$(mktemp -d)
START=$(date +%s)
PY="$VENV/bin/python"
export TF_CPP_MIN_LOG_LEVEL=2 PYTHONUNBUFFERED=1

remaining() { echo $((BUDGET_S - ($(date +%s) - START))); }

# stage NAME LIMIT_S COMMAND...: runs the command under min(LIMIT_S, time left), records it.
stage() {
  local name=$1 limit=$2; shift 2
  local left; left=$(remaining)
  (( limit > left - 5 )) && limit=$((left - 5))
  if (( limit < 10 )); then
    echo "{\"stage\": \"$name\", \"rc\": null, \"skipped\": \"out of time\"}" > "$WORK/$name.json"
    return
  fi
  echo "== $name (limit ${limit}s)"
  local t0; t0=$(date +%s)
  timeout "$limit" bash -c "$*" > "$WORK/$name.log" 2>&1
  local rc=$?
  tail -n 40 "$WORK/$name.log"
  python3 - "$name" "$rc" "$(( $(date +%s) - t0 ))" "$limit" "$WORK/$name.log" > "$WORK/$name.json" <<'EOF'
import json, sys
name, rc, seconds, limit, log = sys.argv[1:]
lines = open(log, errors="replace").read().splitlines()
print(json.dumps({"stage": name, "rc": int(rc), "timed_out": int(rc) in (124, 137),
                  "seconds": int(seconds), "limit_s": int(limit), "tail": lines[-25:]}))
EOF
}

install() {
  if [ ! -x "$PY" ]; then python3 -m venv "$VENV" || return 1; fi
  "$PY" -m pip install -q -e ".[gpu,dev]"
}

devices() {
  "$PY" - <<'EOF'
import json, os, subprocess, sys
out = {}
code_tf = "import tensorflow as tf; print(json.dumps([d.name for d in tf.config.list_physical_devices('GPU')]))"
code_jax = "import jax; print(json.dumps([str(d) for d in jax.devices()]))"
for key, code in (("tensorflow_gpus", code_tf), ("jax_devices", code_jax)):
    run = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True)
    out[key] = json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else run.stderr[-2000:]
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                          "--format=csv,noheader"], capture_output=True, text=True)
    out["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
except FileNotFoundError:
    out["nvidia_smi"] = "nvidia-smi not found"
print("DEVICES " + json.dumps(out))
ok = isinstance(out["tensorflow_gpus"], list) and out["tensorflow_gpus"] and \
     isinstance(out["jax_devices"], list) and any("cuda" in d.lower() or "gpu" in d.lower() for d in out["jax_devices"])
sys.exit(0 if ok else 3)
EOF
  local rc=$?
  "$VENV/bin/kerassl" info
  return $rc
}

tests() {
  KERAS_BACKEND=tensorflow "$PY" -m pytest -p no:cacheprovider -q -x -m "slow or not slow" \
    tests/test_jit_auto.py tests/test_finetune.py tests/test_mixed_precision.py \
    -k "not gan and not clip and not jigsaw and not rotnet and not autoencoder and not learn" \
  && KERAS_BACKEND=jax "$PY" -m pytest -p no:cacheprovider -q -x tests/test_jit_auto.py tests/test_simclr.py -k "not learn"
}

finetune() {
  "$PY" - <<'EOF'
import json, time
import numpy as np, keras, kerassl
from kerassl.evaluate.features import resolve_jit_compile
rng = np.random.default_rng(0)
x = rng.integers(0, 256, (2048, 32, 32, 3)).astype("uint8"); y = rng.integers(0, 10, 2048)
out = {"auto_resolves_to": resolve_jit_compile("auto", kerassl.backbones.resnet18(input_shape=(32, 32, 3)))}
for jit in ("auto", False):
    encoder = kerassl.backbones.resnet18(input_shape=(32, 32, 3))
    t0 = time.perf_counter()
    kerassl.finetune(encoder, (x, y), num_classes=10, mode="full", epochs=1, batch_size=256, jit_compile=jit)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    kerassl.finetune(encoder, (x, y), num_classes=10, mode="full", epochs=2, batch_size=256, jit_compile=jit)
    out[f"jit_{jit}"] = {"first_epoch_s": round(first, 2), "two_epochs_s": round(time.perf_counter() - t0, 2)}
print("FINETUNE " + json.dumps(out))
assert out["auto_resolves_to"] is True, "jit_compile='auto' must pick XLA on a GPU"
EOF
}

THROUGHPUT_ARGS=(--suite gpu --only throughput --sides kerassl,lightly
  --rows "kerassl tensorflow jit on,lightly loader+step" --skip mae
  --warmup-steps 3 --timed-steps 10 --timeout 60)

throughput() {
  # The peer needs torch + lightly (benchmarks/.peer-venv, made on first use, needs pip access).
  KERAS_BACKEND=tensorflow "$PY" benchmarks/run.py "${THROUGHPUT_ARGS[@]}" --out "$WORK/throughput" "$@"
}

# Opt-in (not in the default STAGES: a full row takes hours): each staple's row of lightly's
# CIFAR-10 table (batch 512, 200 epochs, kNN k=200), kerassl and lightly, via
# benchmarks/cifar10_table.py. TABLE_EPOCHS shortens the rows, TABLE_METHODS picks them, e.g.
#   STAGES="devices cifar10_table" TABLE_EPOCHS=1 BUDGET_S=3600 bash benchmarks/gpu_check.sh
cifar10_table() {
  KERAS_BACKEND=tensorflow "$PY" benchmarks/cifar10_table.py --methods "${TABLE_METHODS:-all}" \
    --epochs "${TABLE_EPOCHS:-200}" --out "$WORK/cifar10_table"
}

export -f install devices tests finetune throughput cifar10_table
export PY VENV WORK
declare -A LIMIT=([install]=170 [devices]=60 [tests]=110 [finetune]=60 [throughput]=170 [cifar10_table]=${TABLE_LIMIT_S:-86400})

if [ "${DRY_RUN:-0}" = 1 ]; then
  bash -n "$0" || exit 1
  total=0
  for name in ${STAGES:-install devices tests finetune throughput}; do
    [ -n "${LIMIT[$name]:-}" ] || { echo "unknown stage $name"; exit 1; }
    echo "stage $name: limit ${LIMIT[$name]} s"; total=$((total + LIMIT[$name]))
  done
  echo "limits add up to $total s; the run stops at BUDGET_S=$BUDGET_S s (later stages get what is left)"
  # The rows, with the Python at hand when the GPU venv is not there yet.
  [ -x "$PY" ] || PY=${DRY_RUN_PYTHON:-python3}
  throughput --dry-run || exit 1
  rm -rf "$WORK"
  exit 0
fi
# STAGES="devices tests" runs a subset (e.g. with an existing KERASSL_GPU_VENV).
for name in ${STAGES:-install devices tests finetune throughput}; do
  stage "$name" "${LIMIT[$name]}" "$name"
done

python3 - "$WORK" "$RESULTS" "$START" <<'EOF'
import datetime, glob, json, os, sys
work, results, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
report = {"date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z",
          "total_s": int(datetime.datetime.now().timestamp()) - start, "stages": {}}
opt_in = ("cifar10_table",) if os.path.exists(os.path.join(work, "cifar10_table.json")) else ()
for name in ("install", "devices", "tests", "finetune", "throughput") + opt_in:
    path = os.path.join(work, name + ".json")
    stage = json.load(open(path)) if os.path.exists(path) else {"rc": None}
    for line in stage.get("tail", []):
        for tag in ("DEVICES ", "FINETUNE "):
            if line.startswith(tag):
                stage[tag.strip().lower()] = json.loads(line[len(tag):])
    report["stages"][name] = stage
rows = sorted(glob.glob(os.path.join(work, "throughput", "*.json")))
report["throughput"] = [json.load(open(p)) for p in rows]
table = os.path.join(work, "cifar10_table", "knn-cifar10.json")
if os.path.exists(table):
    report["cifar10_table"] = json.load(open(table))
report["ok"] = all(s.get("rc") == 0 for s in report["stages"].values())
name = "gpu_check.json" if os.environ.get("OUT") else f"gpu_check-{report['date'][:10]}.json"
with open(os.path.join(results, name), "w") as f:
    json.dump(report, f, indent=1)
print(json.dumps({k: (v.get("rc"), v.get("seconds")) for k, v in report["stages"].items()}))
print("wrote", os.path.join(results, name))
EOF
