#!/usr/bin/env bash
# The one GPU entry point: run every GPU check and benchmark that has no GPU record under results/ yet, most
# important first, within a total budget (default 300 s), writing each stage's output to $OUT as it finishes.
#
#   OUT=/path/out [CIFAR10_ROOT=/path/to/cifar10] [BUDGET=300] bash scripts/gpu_checks.sh
#   TINY=1 OUT=/tmp/gpu_checks bash scripts/gpu_checks.sh        # CPU smoke run with tiny settings
#
# A stage is pending while results/<stage>_gpu.json (or results/<stage>_gpu/) is missing; FORCE=1 runs them all.
# After each stage the figures are printed beside the recorded H100 anchors (shared/reference/trajectory-matching.md):
#   official evaluate_synset: 7-9 s per network for CIFAR-10 IPC 10 (1001 passes);
#   exact MTT step: 0.33 s/it at 8.6 GiB for CIFAR-10 IPC 10, N=30 (unrolled, one H100).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder that receives the results}
BUDGET=${BUDGET:-300}
TINY=${TINY:-0}
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:-.}
start=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - start) )); }

pending() {  # pending NAME: true when no GPU record of NAME is committed
  [ "${FORCE:-0}" = 1 ] && return 0
  [ ! -e "results/${1}_gpu.json" ] && [ ! -e "results/${1}_gpu" ]
}

stage() {  # stage NAME SECONDS CMD...: run CMD with a time limit, keep its log, report the outcome
  local name=$1 limit=$2; shift 2
  local budget_left; budget_left=$(left)
  if ! pending "$name"; then echo "== $name: recorded in results/ already (FORCE=1 reruns it)"; return; fi
  if [ "$budget_left" -lt 20 ]; then echo "== $name: skipped, ${budget_left} s left of ${BUDGET}"; return; fi
  [ "$limit" -gt "$budget_left" ] && limit=$budget_left
  echo "== $name (limit ${limit} s, ${budget_left} s left)"
  local t0; t0=$(date +%s)
  timeout --signal=INT "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "{\"stage\": \"$name\", \"rc\": $rc, \"seconds\": $(( $(date +%s) - t0 ))}" >> "$OUT/stages.jsonl"
  echo "== $name: exit $rc after $(( $(date +%s) - t0 )) s"
}

python - <<'PY' 2>&1 | tee "$OUT/versions.txt"
import importlib, platform, sys
print("python", sys.version.split()[0], platform.platform())
for name in ("torch", "torchvision", "timm", "kornia", "hydra", "omegaconf", "safetensors", "pandas", "filelock"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as err:  # noqa: BLE001 - report what is missing, do not stop
        print(name, "MISSING", err)
import torch
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY

if [ "$TINY" = 1 ]; then
  EV="--device cpu --seeds 2 --passes 2 --repeats 3"; TM="--device cpu --ipcs 10 --syn-steps 2 --repeats 1"
  EX="--device cpu --experts 2 --epochs 1 --images 256"
  CHECK="--dataset digits --experts 2 --expert-epochs 4 --max-start 2 --eval-epochs 3 --device cpu --chunk 5 --select-every 5 --select-epochs 3"
  DB="--device cpu --teacher convnet_bn --iterations 2 --epochs 1 --images 128 --repeats 1"
  DC="--dataset digits --teacher-epochs 2 --iterations 5 --eval-epochs 3 --seeds 2 --student convnet --device cpu"
else
  EV="--device cuda"; TM="--device cuda --ipcs 10 50 --syn-steps 30 --repeats 2"
  EX="--device cuda --experts 10 --epochs 1 --images 50000"
  CHECK="--dataset cifar10 --zca --data-root ${CIFAR10_ROOT:-} --device cuda"
  DB="--device cuda --student resnet18_cifar --epochs 3 --repeats 2"
  DC="--dataset cifar10 --data-root ${CIFAR10_ROOT:-} --device cuda --teacher-epochs 5 --seeds 3"
fi

# 1. The ranking protocol's evaluator: 5 networks batched vs one at a time (target >= 3x, 5 networks in < 6 s).
stage bench_evaluator 60 python scripts/bench_evaluator.py $EV --out "$OUT/bench_evaluator_gpu.json"
# 2. One trajectory-matching step: plain unrolled vs exact vs TESLA vs recompute (target: exact <= 0.5x plain).
stage bench_tm 90 python scripts/bench_tm.py $TM --out "$OUT/bench_tm_gpu.json"
# 3. Experts several at once vs one at a time (target >= 3x).
stage bench_experts 60 python scripts/bench_experts.py $EX --out "$OUT/bench_experts_gpu.json"
# 4. The decoupled family: recover it/s, relabel img/s, kd steps/s vs plain loops; FKD replay vs online teacher.
stage bench_decoupled 40 python scripts/bench_decoupled.py $DB --out "$OUT/bench_decoupled_gpu.json"
# 5. SRe2L and RDED at IPC 10 on real CIFAR-10 (teacher 5 epochs: reduced), kd evaluation with both references.
if [ "$TINY" = 1 ] || [ -n "${CIFAR10_ROOT:-}" ]; then
  stage gpu_check_decoupled 100 python scripts/gpu_check_decoupled.py $DC --budget 90 --out "$OUT/gpu_check_decoupled_gpu"
else
  echo "== gpu_check_decoupled: skipped, CIFAR10_ROOT is not set"
fi
# 5b. CV-DD (a committee of 2), INFER (M = 2) and NRR-DD at IPC 10, the same way (teachers 5 epochs: reduced).
if [ "$TINY" = 1 ] || [ -n "${CIFAR10_ROOT:-}" ]; then
  stage gpu_check_cvdd_infer_nrrdd 100 python scripts/gpu_check_decoupled.py $DC --methods cvdd infer nrrdd \
    --budget 90 --out "$OUT/gpu_check_cvdd_infer_nrrdd_gpu"
else
  echo "== gpu_check_cvdd_infer_nrrdd: skipped, CIFAR10_ROOT is not set"
fi
# 6. Experts + MTT and DATM at IPC 10 on real CIFAR-10, 5-seed evaluations, in what is left.
if [ "$TINY" = 1 ] || [ -n "${CIFAR10_ROOT:-}" ]; then
  check_budget=$(( $(left) - 15 ))
  stage gpu_check_tm "$(( check_budget + 10 ))" python scripts/gpu_check_tm.py $CHECK --budget "$check_budget" \
    --selection --out "$OUT/gpu_check_tm_gpu"
else
  echo "== gpu_check_tm: skipped, CIFAR10_ROOT is not set (unpack .gpu/c10 and point CIFAR10_ROOT at it)"
fi

python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.is_file() else None
print("\n== figures beside the H100 anchors")
ev = load("bench_evaluator_gpu.json")
if ev:
    b, s = ev["evaluation"]["batched"], ev["evaluation"]["sequential"]
    print(f"evaluator: {b['seeds']} networks batched {b['extrapolated_seconds_1001_passes']:.1f} s for 1001 passes "
          f"({b['extrapolated_seconds_1001_passes'] / b['seeds']:.1f} s per network; official evaluate_synset 7-9 s "
          f"per network on an H100), batched {ev['evaluation']['batched_speedup']:.2f}x sequential (target >= 3x)")
tm = load("bench_tm_gpu.json")
for r in (tm or {}).get("settings", []):
    peak = r["recompute"]["peak_memory"]["bytes"]
    print(f"TM step IPC {r['ipc']} N={r['syn_steps']}: plain {r['plain']['seconds_per_iteration']:.3f} s/it, exact "
          f"recompute {r['recompute']['seconds_per_iteration']:.3f} s/it "
          f"({'n/a' if peak is None else f'{peak / 2**30:.2f} GiB'}); anchor 0.33 s/it at 8.6 GiB (IPC 10, N=30)")
ex = load("bench_experts_gpu.json")
if ex:
    print(f"experts: batched {ex['batched_speedup']:.2f}x sequential (target >= 3x); "
          f"{ex['sequential']['seconds_per_expert_epoch_at_50000_images']:.1f} s per expert-epoch at 50,000 images "
          "one at a time (official buffer.py ~3 s on an H100)")
stages = out / "gpu_check_tm_gpu" / "stages.jsonl"
for line in stages.read_text().splitlines() if stages.is_file() else []:
    d = json.loads(line)
    if d["stage"].startswith("evaluate_") and "error" in d:
        print(f"gpu_check_tm {d['stage']}: {d['error']}")
    elif d["stage"].startswith("evaluate_"):
        selected = (f"; test-selected {d['acc_test_selected']:.2f} (bias {d['test_selection_bias']:+.2f}, not ranked)"
                    if "acc_test_selected" in d else "")
        print(f"gpu_check_tm {d['stage']}: {d['acc_mean']:.2f} +- {d['acc_std']:.2f} under {d['protocol']}{selected}")
PY
echo "== gpu_checks: $(( $(date +%s) - start )) s of ${BUDGET}"
