"""What every ledger pair shares: resumable steps, the run-time shim for official code, records, the entry.

A pair is a short list of **steps** (a subprocess each: the official pipeline, dd-bench's, the scorings); a step
whose marker ``<work>/<step>.done.json`` exists is skipped, so a killed pair resumes at its first unfinished step.
Every step's command, wall time and log file are kept in the marker and end up in the entry.

The official code runs as its authors ship it, from a checkout given with ``--official`` (never committed, never
downloaded here). What the harness changes is only the environment, through a ``sitecustomize`` module put first on
``PYTHONPATH`` (:func:`write_shim`): seeding the global RNGs from ``LEDGER_SEED`` (the official scripts seed
nothing), and, per pair, the adaptations it names (e.g. a copying ``Tensor.cpu`` for MTT's ``buffer.py`` on a CPU, a
no-op ``wandb``). Each adaptation is a string in the entry's ``official.adaptations``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dd_bench.io import atomic_write_json
from dd_bench.results.ledger import LEDGER_FORMAT, LEDGER_VERSION, check_entry, compare
from dd_bench.results.record import load_records

ROOT = Path(__file__).resolve().parents[2]

# DatasetCondensation's evaluation routine on a set, for the DM cross-check and the evaluator pairs: our code calling
# the checkout's functions (run with the checkout as the working directory, first on sys.path), so nothing of theirs is
# copied here. ``--layout res``: main_DM.py's res file (``{"data": [[images, labels], ...]}``, the last entry);
# ``export``: ``dd-bench export format=pt``'s tensors (``images_stored``, ``labels``). torch.manual_seed(i) before
# network i.
DC_EVALUATE_DRIVER = '''\
import argparse, json, sys, time, torch
sys.path.insert(0, ".")
from utils import get_dataset, get_network, evaluate_synset, ParamDiffAug
p = argparse.ArgumentParser()
for k in ("--set", "--dataset", "--data_path", "--model", "--out", "--dsa_strategy"):
    p.add_argument(k, required=True)
for k in ("--nets", "--epoch_eval_train", "--batch_train"):
    p.add_argument(k, type=int, required=True)
p.add_argument("--lr_net", type=float, required=True)
p.add_argument("--layout", choices=("res", "export"), default="res")
a = p.parse_args()
channel, im_size, num_classes, _, _, _, _, _, testloader = get_dataset(a.dataset, a.data_path)
if a.layout == "res":
    import numpy as np  # the res file's accuracies are numpy scalars: allow those reconstructors, no other pickle
    with torch.serialization.safe_globals([np._core.multiarray.scalar, np.dtype, type(np.dtype(np.float64))]):
        images, labels = torch.load(a.set, map_location="cpu", weights_only=True)["data"][-1]
else:
    tensors = torch.load(a.set, map_location="cpu", weights_only=True)
    images, labels = tensors["images_stored"].float(), tensors["labels"].long()
args = argparse.Namespace(device="cpu", lr_net=a.lr_net, epoch_eval_train=a.epoch_eval_train,
                          batch_train=a.batch_train, dsa=a.dsa_strategy not in ("none", "None"),
                          dsa_strategy=a.dsa_strategy, dsa_param=ParamDiffAug(), dc_aug_param=None)
accs, start = [], time.perf_counter()
for i in range(a.nets):
    torch.manual_seed(i)
    net = get_network(a.model, channel, num_classes, im_size)
    accs.append(100.0 * evaluate_synset(i, net, images.clone(), labels.clone(), testloader, args)[2])
json.dump({"accuracies": accs, "scoring_seconds": time.perf_counter() - start}, open(a.out, "w"))
'''


def cross_check(*, evaluator: str, official: list[float], ddbench: list[float], set_name: str = "official",
                **extra: Any) -> dict[str, Any]:
    """An entry's ``cross_check``: one set under the official routine (``official``) and dd-bench's evaluator."""
    return {"set": set_name, "evaluator": evaluator, "accuracies_official_evaluator": official, **extra,
            "mean_official_evaluator": statistics.fmean(official), "mean_ddbench_evaluator": statistics.fmean(ddbench),
            "difference": statistics.fmean(ddbench) - statistics.fmean(official)}


def timing(*, basis: str, note: str, **steps: dict[str, Any]) -> dict[str, Any]:
    """An entry's timing context: what ``wall_time_ratio`` divides (``basis``), what ran beside the pair (``note``)
    and the load averages :func:`run_step` saw at both ends of each timed step (by name). Every pair times the same
    work on both sides; an entry that cannot would add ``wall_time_not_comparable`` (the reason), which the ledger's
    speed line counts neither way."""
    return {"wall_time_ratio_basis": basis, "timing_note": note,
            "load_average": {name: step.get("load_average") for name, step in steps.items()}}


def git_commit(path: Path) -> str:
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"error: {path} is not a git checkout (the entry records the official commit)")
    return out.stdout.strip()


def git_sha_clean() -> str:
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return sha + ("-dirty" if dirty else "")


def ddbench_command(*overrides: str, task: str = "run") -> list[str]:
    """dd-bench as a user runs it (the console entry point's function, under this interpreter)."""
    return [sys.executable, "-c", "import sys; from dd_bench.app.cli import main; sys.exit(main())", task, *overrides]


def run_step(work: Path, name: str, command: list[str], *, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command`` once (skipped when ``<work>/<name>.done.json`` exists); log to ``<work>/<name>.log``."""
    marker = work / f"{name}.done.json"
    if marker.is_file():
        print(f"[{name}] done earlier ({json.loads(marker.read_text())['wall_seconds']:.0f} s): skipped", flush=True)
        return json.loads(marker.read_text())
    work.mkdir(parents=True, exist_ok=True)
    log = work / f"{name}.log"
    print(f"[{name}] {shlex.join(command)}", flush=True)
    # The 1-, 5- and 15-minute load averages at both ends: a wall time measured beside other work says so.
    load_start = os.getloadavg()
    start = time.perf_counter()
    with open(log, "w") as handle:
        done = subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=handle,
                              stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text().strip().splitlines()[-15:]
        raise SystemExit(f"[{name}] failed (exit {done.returncode}) after {wall:.0f} s; {log}:\n" + "\n".join(tail))
    info = {"command": shlex.join(command), "cwd": str(cwd) if cwd else None, "wall_seconds": wall, "log": str(log),
            "env": env or {}, "load_average": {"start": load_start, "end": os.getloadavg()}}
    atomic_write_json(marker, info)
    print(f"[{name}] {wall:.0f} s", flush=True)
    return info


def only_record(results: Path, *, kind: str = "evaluation") -> Any:
    """The one record of ``kind`` under ``results`` (a pair's dd-bench folders hold exactly one)."""
    records = [r for r in load_records(results) if r.kind == kind]
    if len(records) != 1:
        raise SystemExit(f"error: expected one {kind} record under {results}; found {len(records)}")
    return records[0]


def seconds_per_iteration(log: Path, *, before: int | None = None,
                          pattern: str = r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\] iter = (\d+)") -> float:
    """Steady-state seconds per iteration from an official log's timestamped ``iter = N`` lines (first to last).

    The official scripts print a 1-s timestamp every few iterations and evaluate inside the same loop, so the total
    wall time mixes distillation and scoring; the slope between the first and the last progress line does not
    (``before``: ignore lines from that iteration on, where an evaluation precedes the print).
    """
    import datetime

    points = [(datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"), int(m.group(2)))
              for m in (re.match(pattern, line) for line in log.read_text().splitlines()) if m]
    points = [(t, i) for t, i in points if before is None or i < before]
    if len(points) < 2 or points[-1][1] == points[0][1]:
        raise SystemExit(f"error: {log} has fewer than two progress lines; cannot time the official distillation")
    (t0, i0), (t1, i1) = points[0], points[-1]
    return (t1 - t0).total_seconds() / (i1 - i0)


def machine() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def write_entry(out: Path, *, pair: str, method: str, dataset: str, ipc: int, official: dict[str, Any],
                ddbench: dict[str, Any], budget: dict[str, Any], data: dict[str, Any], scoring: dict[str, Any],
                ours: list[float], theirs: list[float], wall_time_ratio: float, reproduce: str,
                extra: dict[str, Any]) -> Path:
    """Write ``<out>/<pair>.json`` (checked by :func:`check_entry` before it is written)."""
    entry = {"format": LEDGER_FORMAT, "version": LEDGER_VERSION, "pair": pair, "method": method, "dataset": dataset,
             "ipc": ipc, "status": "measured", "official": official, "ddbench": ddbench, "budget": budget,
             "data": data, "scoring": scoring, "accuracies": {"ddbench": ours, "official": theirs},
             **compare(ours, theirs), "wall_time_ratio": wall_time_ratio, "reproduce": reproduce,
             "machine": machine(), "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}
    check_entry(entry, where=pair)
    path = out / f"{pair}.json"
    atomic_write_json(path, entry)
    return path


def wandb_logged(log: Path, key: str, *, step: int) -> float:
    """The value of ``key`` logged at ``step`` through the ``wandb_noop`` adaptation (its JSON-lines file)."""
    for line in log.read_text().splitlines() if log.is_file() else []:
        row = json.loads(line)
        if row.get("step") == step and key in row:
            return row[key]
    raise SystemExit(f"error: {log} has no '{key}' at step {step}: the official run stopped before it")


def write_test_split(real: Any, *, out: Path, per_class: int | None = None, seed: int = 0) -> dict[str, Any]:
    """The test split of ``real`` as PNG files under ``out/test/<class index>_<name>/`` (data.py's train naming, so
    both splits have the same class folders); ``per_class``: a class-balanced few (smoke runs), else all of it."""
    import torch
    from PIL import Image

    from dd_bench.data.subsets import class_balanced_indices

    indices = (torch.arange(len(real.test_labels)) if per_class is None else class_balanced_indices(
        real.test_labels, per_class, real.num_classes, generator=torch.Generator().manual_seed(seed)))
    for i in indices.tolist():
        label = int(real.test_labels[i])
        folder = out / "test" / f"{label:03d}_{real.class_names[label]}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = real.test_images[i].permute(1, 2, 0).numpy()  # (H, W, C) uint8
        Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(folder / f"{i:05d}.png")
    return {"test": "full" if per_class is None else f"{per_class} per class (seed {seed}; a smoke run only)",
            "test_images": len(indices)}


SUBSET_STEP = ("--root", "--out", "--per-class", "--seed", "--test-per-class")


def step_args(argv: list[str], *, prog: str, steps: dict[str, tuple[str, ...]]) -> argparse.Namespace:
    """``<script> _<step> --flag value ...``: the flags of a step that is our code, run as a subprocess of a pair."""
    names = steps.get(argv[0])
    if names is None:
        raise SystemExit(f"error: unknown step {argv[0]}")
    parser = argparse.ArgumentParser(prog=f"{prog} {argv[0]}")
    for name in names:
        parser.add_argument(name, default=None)
    return parser.parse_args(argv[1:])


def subset_step(a: argparse.Namespace) -> None:
    """The ``_subset`` step (:data:`SUBSET_STEP` flags): the class-balanced CIFAR-10 tree."""
    write_subset_tree("cifar10", Path(a.root), per_class=int(a.per_class), seed=int(a.seed), out=Path(a.out),
                      test_per_class=None if a.test_per_class is None else int(a.test_per_class))


def write_subset_tree(dataset: str, root: Path, *, per_class: int, seed: int, test_per_class: int | None,
                      out: Path) -> dict[str, Any]:
    """One ImageFolder tree both sides of a pair read: data.py's class-balanced training subset under ``out/train``
    and the test split under ``out/test`` (the same class folders), described in ``out/subset.json``."""
    from data import write_subset

    from dd_bench.data import load_dataset

    real = load_dataset(dataset, root=root, progress=False)
    info = write_subset(real, per_class=per_class, seed=seed, out=out)
    info.update(write_test_split(real, out=out, per_class=test_per_class, seed=seed))
    atomic_write_json(out / "subset.json", info)
    return info


def stamped_dir(folder: Path, spec: dict[str, Any]) -> Path:
    """``folder`` for steps shared under one budget ``spec``; refused when it holds another budget's (finished steps
    are skipped by their markers, so they would be reused silently)."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = folder / "budget.json"
    if stamp.is_file() and json.loads(stamp.read_text()) != json.loads(json.dumps(spec)):
        raise SystemExit(f"error: {folder} holds the steps of another budget ({stamp}); give another --work")
    atomic_write_json(stamp, spec)
    return folder


def trajectory_test_accuracies(real: Any, experts: Any) -> list[list[float]]:
    """Test accuracy (%) of every snapshot of every expert (``ExpertTrajectories``, (E, T+1, P)): the experts' network
    in ``real``'s model space, on its whole test split, 500 images at a time."""
    import torch

    flat, x, y = experts.flat_model(), real.to_model_space(real.test_images), real.test_labels
    with torch.no_grad():
        return [[100.0 * sum(int((flat.forward(theta, x[i:i + 500]).argmax(1) == y[i:i + 500]).sum())
                             for i in range(0, len(y), 500)) / len(y) for theta in trajectory]
                for trajectory in experts.params]


def score_experts(dataset: str, *, tree: Path, official_glob: str, ddbench_cache: Path, out: Path,
                  official_width: int = 128) -> None:
    """A trajectory-matching experts pair's scoring: every snapshot of the official ``replay_buffer_*.pt`` experts
    and of dd-bench's (the one experts entry of the cache at ``ddbench_cache``), each on ``tree``'s test split in
    dd-bench's model space (its ZCA when the experts were trained with one), one scorer for both; ``out``: JSON."""
    import glob

    import torch
    from safetensors.torch import load_file

    from dd_bench.data import load_dataset
    from dd_bench.experts import ExpertTrajectories, import_replay_buffers

    roots = sorted({p.parent for p in ddbench_cache.glob("experts/*/expert_*.safetensors")})
    if len(roots) != 1:
        raise SystemExit(f"error: expected one experts entry under {ddbench_cache}/experts; found {len(roots)}")
    meta = json.loads((roots[0] / "meta.json").read_text())
    real = load_dataset(dataset, root=tree, zca=meta["dataset"]["image_space"] == "zca", progress=False)
    files = sorted(roots[0].glob("expert_*.safetensors"))
    ours = ExpertTrajectories(params=torch.stack([load_file(str(f))["params"] for f in files]), model=meta["model"],
                              model_kwargs=meta["model_kwargs"], key=meta["key"])
    theirs = import_replay_buffers(sorted(glob.glob(official_glob)), model="convnet", num_classes=real.num_classes,
                                   in_channels=real.channels, image_size=real.image_size,
                                   model_kwargs={"width": official_width})
    atomic_write_json(out, {"ddbench": trajectory_test_accuracies(real, ours),
                            "official": trajectory_test_accuracies(real, theirs), "ddbench_key": meta["key"],
                            "ddbench_wall": sum(e["wall_seconds"] for e in meta["experts"].values())})
