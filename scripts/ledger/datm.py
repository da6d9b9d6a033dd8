"""The DATM pair of the fidelity ledger (NUS-HPC-AI-Lab/DATM, CIFAR-10 IPC 10, ZCA), run through pair.py.

    python scripts/ledger/pair.py datm-cifar10-ipc10 --official /path/to/DATM --data /path/to/cifar10

"On the same trajectories": both distillers start from the MTT pairs' family (mtt.py's ``prepare_family``: the
``subset`` tree and buffer.py's ``official-buffer``, shared under ``<work>/mtt-cifar10``). DATM.py reads buffer.py's
files where buffer.py writes them (``<buffer_path>/CIFAR10/ConvNet/replay_buffer_<n>.pt``) in its layout (experts,
each a list of per-epoch parameter lists; DATM's ConvNet and reparam_module.py are MTT's): no layout is adapted.
Then ``official-distill`` (distill/DATM.py with the checkout's IPC10.yaml, the budget's values and run-time keys),
``ddbench-run`` (``dd-bench run experiment=datm_cifar10_ipc10`` + the same values, ``method.expert_buffers``),
``import-official`` (``format=datm``: images, learned logits, learned lr), ``score-official`` (dd-bench's evaluator)
and ``cross-check`` (distill/evaluation.py, the official evaluation script, driven in-process on the official set).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mtt  # noqa: E402
from harness import (  # noqa: E402
    ROOT,
    cross_check,
    ddbench_command,
    git_commit,
    git_sha_clean,
    only_record,
    run_step,
    seconds_per_iteration,
    timing,
    write_entry,
)
from shims import ADAPTATION_NOTES, write_shim  # noqa: E402

REPOSITORY = "NUS-HPC-AI-Lab/DATM"
OFFICIAL_CONFIG = "configs/CIFAR-10/ConvIN/IPC10.yaml"  # the official config the pair starts from (its file)
EXPERIMENT = "datm_cifar10_ipc10"
STUDENT = "convnet (ConvNet width 128, depth 3, instance norm, avg pooling)"
DISTILL_SHIM = ("cifar_imagefolder", "wandb_noop", "cuda_copy")
# dd-bench's run is the experiment a user runs, with its checkpoint selection off: the official set is the one at
# iteration N (no selection), so dd-bench's is its last iterate too, and no validation split is held out of the
# subset (both sides fit ZCA on, and draw the init from, the same images).
SELECTION_OFF = ("validation=null", "method.eval_every=0", "method.paper_selection=false")

# The official evaluation script on the official set, run in-process once per network: evaluation.py as shipped
# (its own argparse defaults: soft CE on the learned logits, the learned lr), with the flags below. Our code only
# records each network's test accuracy by wrapping utils_baseline.evaluate_synset, which evaluation.py imports.
CROSS_CHECK_DRIVER = '''\
import argparse, json, os, runpy, sys
sys.path[:0] = [".", "distill"]
import utils.utils_baseline as base
p = argparse.ArgumentParser()
for k in ("--dir", "--data_path", "--out"):
    p.add_argument(k, required=True)
for k in ("--nets", "--epoch_eval_train", "--batch_train"):
    p.add_argument(k, type=int, required=True)
a = p.parse_args()
runs, evaluate = [], base.evaluate_synset
def recorded(*args, **kwargs):
    out = evaluate(*args, **kwargs)
    runs.append((100.0 * out[2], args[5]))
    return out
base.evaluate_synset = recorded
flags = ["--dataset", "CIFAR10", "--model", "ConvNet", "--zca", "--data_path", a.data_path, "--parall_eva", "True",
         "--epoch_eval_train", str(a.epoch_eval_train), "--batch_train", str(a.batch_train),
         *[x for k, f in (("--data_dir", "images"), ("--label_dir", "labels"), ("--lr_dir", "lr"))
           for x in (k, os.path.join(a.dir, f + "_best.pt"))]]
for _ in range(a.nets):
    sys.argv = ["evaluation.py", *flags]
    runpy.run_path("distill/evaluation.py", run_name="__main__")
from dd_bench.data import load_dataset
from dd_bench.data.zca import matrix_sha256
used = runs[0][1]
ours, theirs = load_dataset("cifar10", root=a.data_path, zca=True, progress=False).zca, used.zca_trans
zca = {"official_sha256": matrix_sha256(theirs.transform_matrix), "ddbench_sha256": ours.sha256,
       "max_abs_difference": float((theirs.transform_matrix.float() - ours.transform).abs().max()),
       "mean_max_abs_difference": float((theirs.mean_vector.float() - ours.mean).abs().max())}
json.dump({"accuracies": [r[0] for r in runs], "lr": float(used.lr_net), "batch_train": used.batch_train,
           "zca": zca}, open(a.out, "w"))
'''

# Run-time adaptations of the official side beyond shims.SHIM_PARTS, each a string in the entry.
RUN_TIME_NOTES = (
    "DATM.py: seed: the shim seeds from LEDGER_SEED, and DATM.py seeds random, numpy and torch with 0 itself (L23-33)",
    "DATM.py: wandb_noop: a no-op wandb module (init keeps the config, which DATM.py reads back from "
    "wandb.config._items, L79-82; log appends the logged scalars to a local JSON-lines file, from which the entry's "
    "trace reads Start_Epoch, Grand_Loss and falts; Histogram/Image are dropped; no network)",
    "DATM.py: cuda_copy: Tensor.cuda returns a CPU copy where CUDA is absent (L391: image_syn.cuda() before saving)",
    "DATM.py: PYTHONPATH holds the checkout's root: DATM.py finds utils/, networks.py and reparam_module.py through "
    "sys.path.append('../'), i.e. only when run from distill/; it runs from the pair's folder instead, so that its "
    "./logged_files lands there and the checkout stays clean",
    "DATM.py: its config is the checkout's configs/CIFAR-10/ConvIN/IPC10.yaml with the budget's values, the paths, "
    "eval_it = Iteration, epoch_eval_train, and two device keys: device [0] (the config pins GPU 3) and parall_eva "
    "True (with False, DATM.py L186-187/L357-359 and utils_baseline.epoch/evaluate_synset put the label-init and "
    "evaluation networks on cuda:0, which a CPU does not have; True uses args.device, and wraps nothing in "
    "DataParallel below two GPUs); every change is listed under official.config_changes",
    "yacs installed beside it (utils/cfg.py imports it; environment.yaml does not list it)",
    "buffer layout: none needed (DATM.py reads buffer.py's replay_buffer_<n>.pt files where buffer.py writes them)",
    "cross-check: evaluation.py as shipped, run in-process by our driver with --parall_eva True (the same device "
    "switch) and --batch_train 256 (eval=mtt's batch; its default 128 is DATM's own protocol)",
)


@dataclasses.dataclass(frozen=True)
class DATMPair:
    """DATM.py against ``dd-bench run experiment=datm_cifar10_ipc10``, both from the family's trajectories.

    Each budget value is written once, here; :func:`official_config` and :meth:`ddbench_overrides` hand the same
    values to both sides (BUDGET_KEYS). ``reduced``: (field, the preset's value) for every value reduced to fit a CPU.
    """

    name: str
    family: mtt.Family
    ipc: int
    iterations: int
    syn_steps: int
    expert_epochs: int
    min_start_epoch: int
    current_max_start_epoch: int
    max_start_epoch: int
    expansion_end_epoch: int
    sequential_generation: bool
    batch_syn: int
    lr_img: float
    lr_lr: float
    lr_teacher: float
    lr_label: float
    label_momentum: float
    update_threshold: float
    eval_epochs: int = 300
    nets: int = 5
    seed: int = 0
    preset: str = f"experiment={EXPERIMENT}"
    reduced: tuple[tuple[str, Any], ...] = ()
    smoke: bool = False  # a plumbing run: its values are not held against the official config's

    def budget(self) -> dict[str, Any]:
        return {**self.family.budget(), **{f: getattr(self, f) for f, _, _ in BUDGET_KEYS if f != "ipc"},
                "eval_epochs": self.eval_epochs, "eval_networks": self.nets, "student": STUDENT,
                "distill_seed": self.seed}

    def recipe(self) -> dict[str, Any]:
        """What the budget leaves out: the fixed recipe on both sides, and the preset values it reduced."""
        return {"preset": self.preset, "official_config": OFFICIAL_CONFIG, "reduced_from_preset": dict(self.reduced),
                "zca": True, "init": "samples_predicted_correctly (dd-bench init=correct)",
                "labels": "learned soft-label logits (dd-bench labels=learned), initialised from the experts' last "
                          "snapshot (Label_Model_Timestamp -1: epoch "
                          f"{self.family.expert_train_epochs} here)",
                "experts": "the mtt-cifar10 family's buffer.py experts (SGD lr 0.01, no momentum, DSA), imported by "
                           "both sides; the preset's GSAM experts (buffer_FTD.py, 100 epochs) are not trained: the "
                           "issue asks for the same trajectories as the MTT pairs",
                "official_in_loop_eval": "num_eval 1, batch_train 128 (the config's), at iteration N only"}

    def ddbench_overrides(self) -> dict[str, str]:
        return {key: _hydra(getattr(self, field)) for field, _, key in BUDGET_KEYS}


def _hydra(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


# (field, DATM config key, dd-bench override): the one table that hands each budget value to both sides.
BUDGET_KEYS = (("ipc", "ipc", "ipc"), ("iterations", "Iteration", "method.iterations"),
               ("syn_steps", "syn_steps", "method.syn_steps"),
               ("expert_epochs", "expert_epochs", "method.expert_epochs"),
               ("min_start_epoch", "min_start_epoch", "method.min_start_epoch"),
               ("current_max_start_epoch", "current_max_start_epoch", "method.current_max_start_epoch"),
               ("max_start_epoch", "max_start_epoch", "method.max_start_epoch"),
               ("expansion_end_epoch", "expansion_end_epoch", "method.expansion_end_epoch"),
               ("sequential_generation", "Sequential_Generation", "method.sequential_generation"),
               ("batch_syn", "batch_syn", "method.batch_syn"), ("lr_img", "lr_img", "method.lr_img"),
               ("lr_lr", "lr_lr", "method.lr_lr"), ("lr_teacher", "lr_teacher", "method.lr_teacher"),
               ("lr_label", "lr_y", "method.lr_label"), ("label_momentum", "Momentum_y", "method.label_momentum"),
               ("update_threshold", "threshold", "method.update_threshold"))
# The family's trajectories have 4 epochs, so start epochs stop at 4 - expert_epochs = 2 (max_start_epoch 3,
# exclusive, as in mtt-cifar10-ipc10). The difficulty window keeps the preset's shape: it starts at the lower half
# of its range ([0, 10) of [0, 20); here [0, 1) of [0, 3)) and reaches the whole range after the same 10% of the
# run (1000 of 10000 iterations; here 10 of 100), so it grows 1 -> 2 -> 3 within the budget. Every other value is
# the preset's. 100 iterations at syn_steps 10: about the mtt-cifar10-ipc10 pair's time (results/ledger/README.md).
PAIRS: dict[str, DATMPair] = {p.name: p for p in (
    DATMPair("datm-cifar10-ipc10", mtt.FAMILY, ipc=10, iterations=100, syn_steps=10, expert_epochs=2,
             min_start_epoch=0, current_max_start_epoch=1, max_start_epoch=3, expansion_end_epoch=10,
             sequential_generation=True, batch_syn=100, lr_img=100.0, lr_lr=1e-5, lr_teacher=0.01, lr_label=2.0,
             label_momentum=0.9, update_threshold=1.0,
             reduced=(("iterations", 10000), ("syn_steps", 80), ("current_max_start_epoch", 10),
                      ("max_start_epoch", 20), ("expansion_end_epoch", 1000), ("num_experts", 100),
                      ("expert_train_epochs", 100))),
)}
# DATM.py's init needs, for every class, ipc training images that one of the first ten experts' last snapshots
# classifies correctly (it cycles `cur` through the experts and fails at the eleventh, L221): the smoke's experts
# are trained longer than mtt.SMOKE_FAMILY's 2 epochs so that a few per class are found.
SMOKE_FAMILY = mtt.Family("datm-cifar10-smoke", per_class=20, experts=10, expert_train_epochs=20, test_per_class=10)


def smoke(pair: DATMPair) -> DATMPair:
    """The plumbing check: 20 images per class, 10 experts x 20 epochs, IPC 2, 12 iterations, 1 eval epoch."""
    return dataclasses.replace(pair, family=SMOKE_FAMILY, ipc=2, iterations=12, syn_steps=2, expert_epochs=1,
                               current_max_start_epoch=1, max_start_epoch=3, expansion_end_epoch=4, batch_syn=20,
                               eval_epochs=1, smoke=True)


def _like(value: Any, like: Any, key: str) -> Any:
    """``value`` in the type of the official config's ``like`` (yacs refuses a float where cfg.py has an int)."""
    if isinstance(like, bool) or isinstance(value, bool):
        return bool(value)
    if isinstance(like, int):
        if int(value) != value:
            raise SystemExit(f"error: {key}={value} where the official config holds an integer")
        return int(value)
    return float(value) if isinstance(like, float) else value


def official_config(base: dict[str, Any], pair: DATMPair, *, data_path: Path,
                    buffer_path: Path) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """(the config DATM.py runs with, {key: [the official config's value, ours]} for every key that differs).

    A value the budget does not reduce must equal the official config's: the table and the official file agree."""
    reduced = dict(pair.reduced)
    cfg = dict(base)
    for field, key, _ in BUDGET_KEYS:
        value = getattr(pair, field)
        if key in base and field not in reduced and not pair.smoke and base[key] != value:
            raise SystemExit(f"error: the budget's {field}={value!r} is not {OFFICIAL_CONFIG}'s {key}={base[key]!r}")
        cfg[key] = _like(value, base.get(key, value), key)
    # One evaluation, at N (skip_first_eva: none at 0): DATM.py saves the set there whatever its score (the first
    # evaluation always beats best_acc = 0), before that iteration's update: it has had exactly N updates.
    cfg.update(data_path=str(data_path), buffer_path=str(buffer_path), eval_it=pair.iterations, skip_first_eva=True,
               num_eval=1, epoch_eval_train=pair.eval_epochs, device=[0], parall_eva=True, project=pair.name)
    missing = object()
    return cfg, {k: [base.get(k), v] for k, v in cfg.items() if base.get(k, missing) != v}


def stage_official_set(normal: Path, out: Path, *, iteration: int) -> dict[str, Any]:
    """The set DATM.py saved at ``iteration`` (``Normal/images_N.pt``, ``labels_N.pt``: the learned logits,
    ``lr_N.pt``) under the names ``dd-bench import format=datm`` reads (the names only; no selection)."""
    files = {kind: normal / f"{kind}_{iteration}.pt" for kind in ("images", "labels", "lr")}
    if not all(f.is_file() for f in files.values()):
        raise SystemExit(f"error: DATM.py saved no set at iteration {iteration} under {normal}: with skip_first_eva "
                         "and eval_it = Iteration it saves there always; see the official-distill log")
    out.mkdir(parents=True, exist_ok=True)
    for kind, path in files.items():
        shutil.copyfile(path, out / f"{kind}_best.pt")
    return {"dir": str(out), **{kind: str(path) for kind, path in files.items()}}


def official_trace(wandb_log: Path, log: Path, *, iterations: int) -> dict[str, Any]:
    """What DATM.py did in its first ``iterations`` updates, from its wandb rows (``Start_Epoch`` and
    ``Grand_Loss`` once per iteration, ``falts`` for each update skipped above the threshold) and its log."""
    rows = [json.loads(line) for line in wandb_log.read_text().splitlines()] if wandb_log.is_file() else []
    starts = [r["Start_Epoch"] for r in rows if "Start_Epoch" in r][:iterations]
    losses = [r["Grand_Loss"] for r in rows if "Grand_Loss" in r][:iterations]
    skipped = sum(1 for r in rows if "falts" in r and r.get("step") is not None and r["step"] < iterations)
    found = re.findall(r"InitialAcc:([\d.]+)", log.read_text())
    return {"start_epochs": starts, "skipped_updates": skipped,
            "mean_loss": statistics.fmean(losses) if losses else None,
            "label_init_accuracy": 100.0 * float(found[-1]) if found else None}


def _run_official(folder: Path, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """The ``official-distill`` step from a clean run folder; DATM.py's init failure is named, not just shown."""
    run_dir = folder / "official-run"
    if not (folder / "official-distill.done.json").is_file():
        shutil.rmtree(run_dir, ignore_errors=True)  # a failed run's files never stand in for this run's
        (folder / "wandb.jsonl").unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return run_step(folder, "official-distill", command, cwd=run_dir, env=env)
    except SystemExit as err:
        log = (folder / "official-distill.log").read_text()
        if "IndexError" in log and "label_expert_files" in log:
            raise SystemExit(f"{err}\nDATM.py's samples_predicted_correctly init found fewer than ipc training "
                             "images of some class that the first ten experts' last snapshots classify correctly "
                             "(DATM.py L215-225 then indexes past the buffer files); weak experts (the family) cause "
                             "it, and dd-bench fills such a class instead (its init record says so)") from None
        raise


def run(pair: DATMPair, *, official: Path, mtt_official: Path, data: Path, work: Path, out: Path,
        timing_note: str = "") -> Path:
    """``official``: the DATM checkout; ``mtt_official``: the mtt-distillation checkout whose buffer.py trains the
    family's experts (skipped when an MTT pair has already run it under ``work``)."""
    if importlib.util.find_spec("yacs") is None:
        raise SystemExit("error: DATM's utils/cfg.py imports yacs, which this interpreter lacks: pip install yacs")
    if not (mtt_official / "buffer.py").is_file():
        raise SystemExit(f"error: {mtt_official} is no mtt-distillation checkout (the family's experts are MTT's "
                         "buffer.py's): give --mtt-official")
    import yaml

    fam = mtt.prepare_family(pair.family, official=mtt_official, data=data, work=work)
    tree, folder, n = fam["tree"], work / pair.family.name / pair.name, pair.iterations
    folder.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load((official / OFFICIAL_CONFIG).read_text())
    cfg, changes = official_config(base, pair, data_path=tree, buffer_path=fam["buffers"])
    cfg_path = folder / "datm_config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    wandb_log, shim = folder / "wandb.jsonl", write_shim(folder / "shim-distill", DISTILL_SHIM)
    env = {"PYTHONPATH": os.pathsep.join([str(shim), str(official)]), "LEDGER_SEED": str(pair.seed),
           "LEDGER_WANDB_LOG": str(wandb_log), "LEDGER_WANDB_RUN": pair.name}
    official_cmd = [sys.executable, str(official / "distill" / "DATM.py"), "--cfg", str(cfg_path)]
    step_official = _run_official(folder, official_cmd, env)
    normal = folder / "official-run" / "logged_files" / "CIFAR10" / str(pair.ipc) / "ConvNet" / pair.name / "Normal"
    staged = stage_official_set(normal, folder / "official-set-files", iteration=n)

    scoring = [f"eval.epochs={pair.eval_epochs}", f"seeds={pair.nets}"]
    ours_cmd = ddbench_command(f"experiment={EXPERIMENT}", f"seed={pair.seed}", f"dataset.root={tree}", *SELECTION_OFF,
                               "references=[]", "progress=false",
                               *[f"{k}={v}" for k, v in pair.ddbench_overrides().items()],
                               f"method.expert_buffers={fam['buffer_glob']}", *scoring,
                               f"results={folder / 'ddbench'}")
    step_ours = run_step(folder, "ddbench-run", ours_cmd, cwd=folder)
    data_args = ["dataset=cifar10", f"dataset.root={tree}", "dataset.zca=true"]
    imported = folder / "official-set"
    run_step(folder, "import-official", ddbench_command(
        "format=datm", f"path={staged['dir']}", *data_args, "space=zca", f"out={imported}", "name=datm_official",
        task="import"), cwd=folder)
    score_cmd = ddbench_command(f"synset={imported}", *data_args, "models=[convnet]", "eval=mtt", "references=[]",
                                "progress=false", *scoring, f"results={folder / 'official-scored'}",
                                task="evaluate")
    step_score = run_step(folder, "score-official", score_cmd, cwd=folder)
    driver, cross_json = folder / "cross_check_driver.py", folder / "cross_check.json"
    driver.write_text(CROSS_CHECK_DRIVER)
    cross_env = {**env, "PYTHONPATH": os.pathsep.join([env["PYTHONPATH"], str(ROOT)])}  # + dd-bench, for its ZCA
    run_step(folder, "cross-check", [sys.executable, str(driver), "--dir", staged["dir"], "--data_path", str(tree),
                                     "--nets", str(pair.nets), "--epoch_eval_train", str(pair.eval_epochs),
                                     "--batch_train", "256", "--out", str(cross_json)], cwd=official, env=cross_env)
    return _entry(pair, fam=fam, folder=folder, out=out, timing_note=timing_note, official={
        "commit": git_commit(official), "config": cfg, "config_changes": changes, "command": official_cmd,
        "environment": env, "staged_set": staged}, steps=(step_official, step_ours, step_score),
        commands=(ours_cmd, score_cmd))


def _entry(pair: DATMPair, *, fam: dict[str, Any], folder: Path, out: Path, timing_note: str, official: dict[str, Any],
           steps: tuple[dict[str, Any], ...], commands: tuple[list[str], list[str]]) -> Path:
    """The entry from the finished steps; ``official``: what ``run`` knows of the official run."""
    (step_official, step_ours, step_score), (ours_cmd, score_cmd) = steps, commands
    n = pair.iterations
    ours, theirs = only_record(folder / "ddbench"), only_record(folder / "official-scored")
    cross = json.loads((folder / "cross_check.json").read_text())
    official_log = Path(step_official["log"])
    official_spi = seconds_per_iteration(official_log, before=n)
    ours_spi = ours.distill_seconds / n
    meta = json.loads((Path(ours.synset) / "meta.json").read_text())
    status = (meta.get("provenance") or {}).get("distill_status") or {}
    trace = official_trace(folder / "wandb.jsonl", official_log, iterations=n)
    adaptations = [*mtt._adaptations(distill=False), f"DATM.py: {ADAPTATION_NOTES['cifar_imagefolder']}",
                   *RUN_TIME_NOTES]
    return write_entry(
        out, pair=pair.name, method="datm", dataset="cifar10", ipc=pair.ipc,
        official={"repository": REPOSITORY, **official, "command": shlex.join(official["command"]),
                  "wall_seconds": official_spi * n, "wall_seconds_total": step_official["wall_seconds"],
                  "seconds_per_iteration": official_spi, "adaptations": adaptations,
                  "buffer": {**fam["buffer"], "repository": mtt.REPOSITORY, "commit": fam["commit"]},
                  "yacs": importlib.metadata.version("yacs"),
                  "notes": [f"eval_it = Iteration = {n}, skip_first_eva: one evaluation, at {n}, before that "
                            f"iteration's update; the set saved there (images/labels/lr_{n}.pt) has had exactly {n} "
                            "updates, some of them skipped above the threshold (both sides skip alike)",
                            f"its in-loop evaluation (1 network, batch 128, soft CE; iteration: %): "
                            f"{mtt.in_loop_accuracies(official_log)}", mtt.CLOCK_NOTE]},
        ddbench={"command": shlex.join(ours_cmd), "git_sha": git_sha_clean(), "record_git_sha": ours.git_sha,
                 "wall_seconds": ours.distill_seconds, "wall_seconds_total": step_ours["wall_seconds"],
                 "seconds_per_iteration": ours_spi, "set_hash": ours.set_hash, "record_hash": ours.record_hash,
                 "learned_lr": meta.get("learned_lr"), "grad_mode": (meta.get("config") or {}).get("grad_mode")},
        budget=pair.budget(), data={**mtt._data_record(fam), "root_layout": (
            "one ImageFolder tree (train/: the subset, test/: the test set; PNG, <index>_<class> folders): "
            "dd-bench's dataset.root, DATM's data_path and buffer.py's --data_path (cifar_imagefolder)")},
        scoring={"evaluator": "dd-bench (eval=mtt: DSA, SGD 0.9 / 5e-4, learned lr, lr x0.1 at half, batch 256, "
                              "soft CE on the learned logits)",
                 "protocol": f"mtt, eval.epochs={pair.eval_epochs}", "model": "convnet",
                 "official_set_command": shlex.join(score_cmd),
                 "official_set_wall_seconds": step_score["wall_seconds"]},
        ours=ours.accuracies, theirs=theirs.accuracies, wall_time_ratio=ours_spi / official_spi,
        reproduce=f"python scripts/ledger/pair.py {pair.name} --official DATM --data CIFAR10",
        extra={"recipe": pair.recipe(), "trace": {
            "official": trace, "ddbench": {"skipped_updates": status.get("skipped_updates"),
                                           "mean_loss": status.get("mean_loss_last_100"),
                                           "init": status.get("init"), "expert_uses": status.get("expert_sampling")}},
            "cross_check": cross_check(
                evaluator=f"official distill/evaluation.py ({pair.nets} runs, one network each: soft CE, the set's "
                          "learned lr, batch 256, get_network's clock seed)",
                official=cross["accuracies"], ddbench=theirs.accuracies, learned_lr=cross["lr"], zca=cross["zca"]),
            **timing(basis="seconds per distillation update, dd-bench / official (official: its progress lines "
                           "before the evaluation; dd-bench: distill_seconds / iterations)",
                     note=timing_note, official_distill=step_official, ddbench_run=step_ours)})
