"""The MTT pairs of the fidelity ledger (GeorgeCazenavette/mtt-distillation, CIFAR-10, ZCA), run through pair.py.

    python scripts/ledger/pair.py mtt-cifar10-ipc1 --official /path/to/mtt-distillation --data /path/to/cifar10

The pairs of one budget share ``<work>/<family>`` and its first two steps, run once by whichever pair comes first:
``subset`` (a class-balanced training subset, scripts/ledger/data.py, and the test set: one ImageFolder tree, read by
dd-bench as ``dataset.root`` and by the official loaders through ``cifar_imagefolder``; each side fits MTT's ZCA on
the same images) and ``official-buffer`` (buffer.py on it, with the copying ``.cpu()``: the issue's trap).

A distillation pair runs the official ``distill.py`` from those trajectories and ``dd-bench run`` with
``method.expert_buffers`` on the same files, imports the official set (``dd-bench import format=mtt``, ZCA space,
its learned lr), scores both with dd-bench's evaluator and cross-checks the official set with ``evaluate_synset``.
The experts pair trains dd-bench's experts (``dd-bench distill method=mtt``) and scores every epoch of every expert
of both sides with one scorer; buffer.py's own test pass is its cross-check.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    SUBSET_STEP,
    cross_check,
    ddbench_command,
    git_commit,
    git_sha_clean,
    only_record,
    run_step,
    score_experts,
    seconds_per_iteration,
    stamped_dir,
    step_args,
    subset_step,
    timing,
    wandb_logged,
    write_entry,
)
from shims import ADAPTATION_NOTES, write_shim  # noqa: E402

REPOSITORY = "GeorgeCazenavette/mtt-distillation"
MTT_SCRIPT = Path(__file__).resolve()
STUDENT = "convnet (ConvNet width 128, depth 3, instance norm, avg pooling)"
# Run-time environment of each official script (shims.SHIM_PARTS), each named in the entry.
BUFFER_SHIM = ("copying_cpu", "cifar_imagefolder")
DISTILL_SHIM = ("cifar_imagefolder", "wandb_noop", "set_capture", "cuda_copy")

# The official evaluation routine on the official set (our code calling the checkout's functions; run with the
# checkout as the working directory), plus both sides' ZCA: the official one get_dataset fits, dd-bench's loader's.
CROSS_CHECK_DRIVER = '''\
import argparse, json, os, sys, torch
sys.path.insert(0, ".")
from utils import get_dataset, get_network, evaluate_synset, ParamDiffAug
p = argparse.ArgumentParser()
for k in ("--dir", "--data_path", "--out"):
    p.add_argument(k, required=True)
for k in ("--nets", "--epoch_eval_train"):
    p.add_argument(k, type=int, required=True)
a = p.parse_args()
data_args = argparse.Namespace(zca=True, device="cpu")
channel, im_size, num_classes, *_, testloader, _, _, _ = get_dataset("CIFAR10", a.data_path, args=data_args)
load = lambda name: torch.load(os.path.join(a.dir, name), map_location="cpu", weights_only=True)
images, labels, lr = load("images_best.pt"), load("labels_best.pt"), float(load("synthetic_lr_best.pt"))
args = argparse.Namespace(device="cpu", dataset="CIFAR10", lr_net=lr, epoch_eval_train=a.epoch_eval_train,
                          batch_train=256, dsa=True, dsa_strategy="color_crop_cutout_flip_scale_rotate",
                          dsa_param=ParamDiffAug(), dc_aug_param=None)
accs = [100.0 * evaluate_synset(i, get_network("ConvNet", channel, num_classes, im_size), images.clone(),
                                labels.clone(), testloader, args)[2] for i in range(a.nets)]
from dd_bench.data import load_dataset
from dd_bench.data.zca import matrix_sha256
ours, theirs = load_dataset("cifar10", root=a.data_path, zca=True, progress=False).zca, data_args.zca_trans
zca = {"official_sha256": matrix_sha256(theirs.transform_matrix), "ddbench_sha256": ours.sha256,
       "max_abs_difference": float((theirs.transform_matrix.float() - ours.transform).abs().max()),
       "mean_max_abs_difference": float((theirs.mean_vector.float() - ours.mean).abs().max())}
json.dump({"accuracies": accs, "lr": lr, "zca": zca}, open(a.out, "w"))
'''


@dataclasses.dataclass(frozen=True)
class Family:
    """What the pairs of one budget share: the subset and the official experts (buffer.py) trained on it."""

    name: str
    per_class: int  # training images per class (class-balanced, seeded)
    experts: int  # buffer.py --num_experts (one file: --save_interval = experts)
    expert_train_epochs: int  # buffer.py --train_epochs
    subset_seed: int = 0
    test_per_class: int | None = None  # None: the full test set (smoke runs: a few per class)
    seed: int = 0  # LEDGER_SEED of buffer.py

    def budget(self) -> dict[str, Any]:
        return {"subset_per_class": self.per_class, "experts": self.experts,
                "expert_train_epochs": self.expert_train_epochs}


@dataclasses.dataclass(frozen=True)
class MTTPair:
    """``kind`` distill (both distillers from the official trajectories) or experts (dd-bench's vs buffer.py's).

    Each budget value is written once, here; :meth:`official_flags` and :meth:`ddbench_overrides` hand the same
    values to both sides. ``reduced``: (field, the preset's value) for every value reduced to fit a CPU.
    """

    name: str
    kind: str
    family: Family
    ipc: int = 1
    iterations: int = 0
    syn_steps: int = 0
    expert_epochs: int = 0
    max_start_epoch: int = 0
    lr_img: float = 0.0
    lr_lr: float = 0.0
    lr_teacher: float = 0.0
    eval_epochs: int = 300
    nets: int = 5
    seed: int = 0
    preset: str = ""
    reduced: tuple[tuple[str, Any], ...] = ()

    def budget(self) -> dict[str, Any]:
        if self.kind == "experts":
            return {**self.family.budget(), "student": STUDENT}
        return {**self.family.budget(), "iterations": self.iterations, "syn_steps": self.syn_steps,
                "expert_epochs": self.expert_epochs, "max_start_epoch": self.max_start_epoch, "lr_img": self.lr_img,
                "lr_lr": self.lr_lr, "lr_teacher": self.lr_teacher, "eval_epochs": self.eval_epochs,
                "eval_networks": self.nets, "student": STUDENT, "distill_seed": self.seed}

    def recipe(self) -> dict[str, Any]:
        """What the budget leaves out: the fixed recipe on both sides, and the preset values it reduced."""
        return {"preset": self.preset, "reduced_from_preset": dict(self.reduced), "zca": True,
                "experts": "SGD lr 0.01, momentum 0, weight decay 0, batch 256, DSA, constant lr (buffer.py's "
                           "defaults; dd-bench's mtt expert defaults)",
                **({} if self.kind == "experts" else {"batch_syn": "all", "init": "real", "labels": "hard"})}

    def official_flags(self) -> dict[str, str]:
        """distill.py's budget flags (everything else is its default, which dd-bench's defaults match)."""
        return {flag: repr(getattr(self, field)) for field, flag, _ in BUDGET_KEYS}

    def ddbench_overrides(self) -> dict[str, str]:
        return {key: repr(getattr(self, field)) for field, _, key in BUDGET_KEYS}


# (field, distill.py flag, dd-bench override): the one table that hands each budget value to both sides.
BUDGET_KEYS = (("ipc", "--ipc", "ipc"), ("iterations", "--Iteration", "method.iterations"),
               ("syn_steps", "--syn_steps", "method.syn_steps"),
               ("expert_epochs", "--expert_epochs", "method.expert_epochs"),
               ("max_start_epoch", "--max_start_epoch", "method.max_start_epoch"),
               ("lr_img", "--lr_img", "method.lr_img"), ("lr_lr", "--lr_lr", "method.lr_lr"),
               ("lr_teacher", "--lr_teacher", "method.lr_teacher"))
# Reduced for about 60-90 min of a 2-core CPU per pair (estimates in results/ledger/README.md). Both distillation
# pairs read the same 4-epoch trajectories, so start epochs stop at expert_train_epochs - expert_epochs; the
# learning rates are the presets'.
FAMILY = Family("mtt-cifar10", per_class=200, experts=10, expert_train_epochs=4)
SMOKE_FAMILY = Family("mtt-cifar10-smoke", per_class=10, experts=5, expert_train_epochs=2, test_per_class=10)
PAIRS: dict[str, MTTPair] = {p.name: p for p in (
    # 1000 iterations: distill.py then saves the set at the last one whatever its in-loop score (it % 1000 == 0).
    MTTPair("mtt-cifar10-ipc1", "distill", FAMILY, ipc=1, iterations=1000, syn_steps=20, expert_epochs=2,
            max_start_epoch=2, lr_img=100.0, lr_lr=1e-7, lr_teacher=0.01, preset="experiment=mtt_cifar10_ipc1",
            reduced=(("iterations", 5000), ("syn_steps", 50), ("num_experts", 100), ("expert_train_epochs", 50))),
    # About 12 s per iteration on 2 cores (100 images per student step) and 17 evaluations of ~2.3 min: 100 fit.
    MTTPair("mtt-cifar10-ipc10", "distill", FAMILY, ipc=10, iterations=100, syn_steps=10, expert_epochs=2,
            max_start_epoch=3, lr_img=100.0, lr_lr=1e-5, lr_teacher=0.001, preset="experiment=mtt_cifar10_ipc10",
            reduced=(("iterations", 5000), ("syn_steps", 30), ("max_start_epoch", 20), ("num_experts", 100),
                     ("expert_train_epochs", 50))),
    MTTPair("mtt-experts-cifar10", "experts", FAMILY, preset="MTT buffer.py (conf/method/mtt.yaml experts)",
            reduced=(("num_experts", 100), ("expert_train_epochs", 50))),
)}


def smoke(pair: MTTPair) -> MTTPair:
    """The plumbing check: 10 images per class, 10 test images per class, 5 experts x 2 epochs, 1 eval epoch."""
    if pair.kind == "experts":
        return dataclasses.replace(pair, family=SMOKE_FAMILY)
    return dataclasses.replace(pair, family=SMOKE_FAMILY, iterations=20, syn_steps=2, expert_epochs=1,
                               max_start_epoch=1, eval_epochs=1)


def _same(a: Any, b: Any) -> bool:
    """Bitwise the same values, NaN equal to NaN (a diverged run's NaNs are the run's, not a capture fault)."""
    import torch

    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=0.0, atol=0.0, equal_nan=True))


def stage_official_set(folder: Path, logged: Path, wandb_log: Path, *, iteration: int,
                       capture: Path) -> dict[str, Any] | None:
    """The set after exactly ``iteration`` updates, as the ``set_capture`` adaptation saved it from distill.py's loop,
    under the names ``dd-bench import format=mtt`` reads (``images_best.pt``, ``labels_best.pt``,
    ``synthetic_lr_best.pt``: the names only; no selection); None, and the step's marker removed, when the run left
    no capture (it did not reach that iteration). Where distill.py saved ``images_<iteration>.pt`` too (iteration %
    1000 == 0, or its in-loop accuracy beat the one at 0) the two must be equal, and the lr it logged there (the
    wandb stand-in's rows) must equal the captured one: a check that the capture reads the right point."""
    import torch

    files = {name: capture / f"{name}.pt" for name in ("image_syn", "label_syn", "syn_lr")}
    step = capture / "step.txt"
    if not (all(f.is_file() for f in files.values()) and step.is_file() and step.read_text() == str(iteration)):
        (folder / "official-distill.done.json").unlink(missing_ok=True)
        return None
    images, labels, lr = (torch.load(files[n], weights_only=True) for n in ("image_syn", "label_syn", "syn_lr"))
    logged_lr = wandb_logged(wandb_log, "Synthetic_LR", step=iteration)
    if not _same(torch.tensor(float(lr)), torch.tensor(float(logged_lr))):
        raise SystemExit(f"error: the captured syn_lr {float(lr)!r} is not the Synthetic_LR distill.py logged at "
                         f"iteration {iteration} ({logged_lr!r}): the capture read another point of the loop")
    saved = logged / f"images_{iteration}.pt"
    if saved.is_file() and not _same(torch.load(saved, weights_only=True), images):
        raise SystemExit(f"error: the captured set differs from {saved}, which distill.py saved at the same point")
    staged = folder / "official-set-files"
    staged.mkdir(exist_ok=True)
    torch.save(images, staged / "images_best.pt")
    torch.save(labels, staged / "labels_best.pt")
    torch.save(torch.tensor(float(lr)), staged / "synthetic_lr_best.pt")
    return {"dir": str(staged), "captured": str(capture), "learned_lr": float(lr),
            "saved_by_distill": str(saved) if saved.is_file() else None}


def in_loop_accuracies(log: Path) -> dict[int, float]:
    """distill.py's own evaluations (iteration -> mean test accuracy, %), from its log."""
    text = log.read_text()
    return dict(zip([int(i) for i in re.findall(r"model_eval = \S+, iteration = (\d+)", text)],
                    [100 * float(m) for m in re.findall(r"Evaluate \d+ random \S+, mean = ([\d.]+)", text)],
                    strict=False))


def buffer_log_test_accuracies(log: Path) -> list[list[float]]:
    """buffer.py's own test accuracy (%) of each expert after epochs 1..T, from its ``Itr/Epoch/Test Acc`` lines."""
    found: dict[int, list[float]] = {}
    for it, acc in re.findall(r"Itr: (\d+)\tEpoch: \d+\tTrain Acc: \S+\tTest Acc: ([\d.]+)", log.read_text()):
        found.setdefault(int(it), []).append(100.0 * float(acc))
    return [found[k] for k in sorted(found)]


def prepare_family(family: Family, *, official: Path, data: Path, work: Path) -> dict[str, Any]:
    """Steps ``subset`` and ``official-buffer``, shared by the pairs of the family."""
    folder = stamped_dir(work / family.name, dataclasses.asdict(family))
    tree, buffers = folder / "data", folder / "buffers"
    subset_cmd = [sys.executable, str(MTT_SCRIPT), "_subset", "--root", str(data), "--per-class",
                  str(family.per_class), "--seed", str(family.subset_seed), "--out", str(tree)]
    subset_cmd += [] if family.test_per_class is None else ["--test-per-class", str(family.test_per_class)]
    run_step(folder, "subset", subset_cmd, cwd=folder)
    env = {"PYTHONPATH": str(write_shim(folder / "shim-buffer", BUFFER_SHIM)), "LEDGER_SEED": str(family.seed)}
    # --save_interval = --num_experts: buffer.py writes a file only once it holds that many trajectories.
    buffer_cmd = [sys.executable, str(official / "buffer.py"), "--dataset", "CIFAR10", "--model", "ConvNet",
                  "--num_experts", str(family.experts), "--train_epochs", str(family.expert_train_epochs), "--zca",
                  "--buffer_path", str(buffers), "--data_path", str(tree), "--save_interval", str(family.experts)]
    step = run_step(folder, "official-buffer", buffer_cmd, cwd=folder, env=env)
    return {"tree": tree, "subset": json.loads((tree / "subset.json").read_text()), "buffers": buffers,
            "buffer_glob": str(buffers / "CIFAR10" / "ConvNet" / "replay_buffer_*.pt"),
            "buffer": {"command": step["command"], "wall_seconds": step["wall_seconds"], "environment": env,
                       "log": step["log"], "load_average": step.get("load_average")}, "commit": git_commit(official)}


def _data_record(fam: dict[str, Any]) -> dict[str, Any]:
    sub = fam["subset"]
    return {"train_subset": {k: sub[k] for k in ("per_class", "seed", "num_images", "indices_sha256")},
            "test": sub["test"], "test_images": sub["test_images"], "source_fingerprint": sub["data_fingerprint"],
            "root_layout": "one ImageFolder tree (train/: the subset, test/: the test set; PNG, <index>_<class> "
                           "folders): dd-bench's dataset.root, the official loaders' --data_path (cifar_imagefolder)",
            "zca": "kornia ZCAWhitening(eps=0.1), fitted on the subset by each side (compared in the cross-check)"}


def _adaptations(*, distill: bool) -> list[str]:
    notes = [f"buffer.py: {ADAPTATION_NOTES[n]}" for n in ("seed", *BUFFER_SHIM)]
    return notes + ([f"distill.py: {ADAPTATION_NOTES[n]}" for n in ("seed", *DISTILL_SHIM)] if distill else [])


def _reproduce(pair: MTTPair) -> str:
    return f"python scripts/ledger/pair.py {pair.name} --official mtt-distillation --data CIFAR10"


CLOCK_NOTE = ("utils.get_network reseeds torch from the clock for every network, so the official torch draws are "
              "not reproducible; LEDGER_SEED fixes numpy's and random's")


def run_distill_pair(pair: MTTPair, *, official: Path, data: Path, work: Path, out: Path,
                     timing_note: str = "") -> Path:
    fam = prepare_family(pair.family, official=official, data=data, work=work)
    tree, folder, n = fam["tree"], work / pair.family.name / pair.name, pair.iterations
    (folder / "official-run").mkdir(parents=True, exist_ok=True)  # distill.py writes ./logged_files/CIFAR10/<run>/
    wandb_log, capture = folder / "wandb.jsonl", folder / "official-capture"
    env = {"PYTHONPATH": str(write_shim(folder / "shim-distill", DISTILL_SHIM)), "LEDGER_SEED": str(pair.seed),
           "LEDGER_WANDB_LOG": str(wandb_log), "LEDGER_WANDB_RUN": pair.name, "LEDGER_CAPTURE_STEP": str(n),
           "LEDGER_CAPTURE_DIR": str(capture)}
    # --eval_it = --Iteration: distill.py evaluates at 0 and n only (one network each: its own log, nothing decided by
    # it here); the set_capture adaptation saves the set at the top of iteration n, after exactly n updates.
    official_cmd = [sys.executable, str(official / "distill.py"), "--dataset", "CIFAR10", "--model", "ConvNet",
                    *[x for kv in pair.official_flags().items() for x in kv], "--zca", "--eval_it", str(n),
                    "--eval_mode", "S", "--num_eval", "1", "--epoch_eval_train", str(pair.eval_epochs),
                    "--buffer_path", str(fam["buffers"]), "--data_path", str(tree)]
    if not (folder / "official-distill.done.json").is_file():
        wandb_log.unlink(missing_ok=True)  # a run logs, captures and saves afresh: no earlier run's file stands in
        shutil.rmtree(capture, ignore_errors=True)
        shutil.rmtree(folder / "official-run" / "logged_files", ignore_errors=True)
    step_official = run_step(folder, "official-distill", official_cmd, cwd=folder / "official-run", env=env)
    staged = stage_official_set(folder, folder / "official-run" / "logged_files" / "CIFAR10" / pair.name,
                                wandb_log, iteration=n, capture=capture)
    if staged is None:
        raise SystemExit(f"error: distill.py left no capture of iteration {n} in {capture} (a run that did not reach "
                         f"it, or one made before set_capture); see {folder / 'official-distill.log'}; its step "
                         "marker is removed, so running the pair again reruns distill.py")

    common = ["dataset=cifar10", f"dataset.root={tree}", "dataset.zca=true", "models=[convnet]", "eval=mtt",
              "references=[]", "progress=false"]
    scoring = [f"eval.epochs={pair.eval_epochs}", f"seeds={pair.nets}"]
    ours_cmd = ddbench_command("method=mtt", f"seed={pair.seed}", *common,
                               *[f"{k}={v}" for k, v in pair.ddbench_overrides().items()],
                               f"method.expert_buffers={fam['buffer_glob']}", *scoring, f"results={folder / 'ddbench'}")
    step_ours = run_step(folder, "ddbench-run", ours_cmd, cwd=folder)
    imported = folder / "official-set"
    run_step(folder, "import-official", ddbench_command(
        "format=mtt", f"path={staged['dir']}", "dataset=cifar10", f"dataset.root={tree}", "dataset.zca=true",
        "space=zca", f"out={imported}", "name=mtt_official", task="import"), cwd=folder)
    score_cmd = ddbench_command(f"synset={imported}", *common, *scoring, f"results={folder / 'official-scored'}",
                                task="evaluate")
    step_score = run_step(folder, "score-official", score_cmd, cwd=folder)
    driver, cross_json = folder / "cross_check_driver.py", folder / "cross_check.json"
    driver.write_text(CROSS_CHECK_DRIVER)
    run_step(folder, "cross-check", [sys.executable, str(driver), "--dir", staged["dir"], "--data_path", str(tree),
                                     "--nets", str(pair.nets), "--epoch_eval_train", str(pair.eval_epochs), "--out",
                                     str(cross_json)], cwd=official, env=env)

    ours, theirs = only_record(folder / "ddbench"), only_record(folder / "official-scored")
    cross = json.loads(cross_json.read_text())
    official_spi = seconds_per_iteration(Path(step_official["log"]), before=n)
    ours_spi = ours.distill_seconds / n
    meta = json.loads((Path(ours.synset) / "meta.json").read_text())
    in_loop = in_loop_accuracies(Path(step_official["log"]))
    return write_entry(
        out, pair=pair.name, method="mtt", dataset="cifar10", ipc=pair.ipc,
        official={"repository": REPOSITORY, "commit": fam["commit"], "command": shlex.join(official_cmd),
                  "wall_seconds": official_spi * n, "wall_seconds_total": step_official["wall_seconds"],
                  "seconds_per_iteration": official_spi, "environment": env, "buffer": fam["buffer"],
                  "adaptations": _adaptations(distill=True), "staged_set": staged,
                  "notes": [f"--Iteration {n} --eval_it {n}: in-loop evaluations at 0 and {n} only; the set is "
                            f"the one after exactly {n} updates, captured at the top of iteration {n} (set_capture); "
                            f"distill.py also saved images_{n}.pt (checked equal) only when {n} % 1000 == 0 or its "
                            "in-loop accuracy beat the one at 0",
                            f"its in-loop evaluations (1 network; iteration: %): {in_loop}",
                            "the set's learned lr: the captured syn_lr, equal to the Synthetic_LR distill.py logs at "
                            "that iteration (distill.py saves no lr)", CLOCK_NOTE]},
        ddbench={"command": shlex.join(ours_cmd), "git_sha": git_sha_clean(), "record_git_sha": ours.git_sha,
                 "wall_seconds": ours.distill_seconds, "wall_seconds_total": step_ours["wall_seconds"],
                 "seconds_per_iteration": ours_spi, "set_hash": ours.set_hash, "record_hash": ours.record_hash,
                 "learned_lr": meta.get("learned_lr"),
                 "grad_mode": (meta.get("config") or {}).get("grad_mode")},
        budget=pair.budget(), data=_data_record(fam),
        scoring={"evaluator": "dd-bench (eval=mtt: DSA, SGD 0.9 / 5e-4, learned lr, lr x0.1 at half, batch 256)",
                 "protocol": f"mtt, eval.epochs={pair.eval_epochs}", "model": "convnet",
                 "official_set_command": shlex.join(score_cmd),
                 "official_set_wall_seconds": step_score["wall_seconds"]},
        ours=ours.accuracies, theirs=theirs.accuracies, wall_time_ratio=ours_spi / official_spi,
        reproduce=_reproduce(pair),
        extra={"recipe": pair.recipe(), "cross_check": cross_check(
            evaluator=f"official utils.evaluate_synset ({pair.nets} networks, the set's learned lr, get_network's "
                      "clock seed)",
            official=cross["accuracies"], ddbench=theirs.accuracies, learned_lr=cross["lr"], zca=cross["zca"]),
            **timing(basis="seconds per distillation update, dd-bench / official (official: its progress lines "
                           "before the last evaluation; dd-bench: distill_seconds / iterations)",
                     note=timing_note, official_distill=step_official, ddbench_run=step_ours)})


def run_experts_pair(pair: MTTPair, *, official: Path, data: Path, work: Path, out: Path,
                     timing_note: str = "") -> Path:
    fam = prepare_family(pair.family, official=official, data=data, work=work)
    tree, folder = fam["tree"], work / pair.family.name / pair.name
    folder.mkdir(parents=True, exist_ok=True)
    cache = folder / "ddbench-cache"  # a fresh cache: the experts are trained (and timed) here, never reused
    # No dd-bench task trains experts alone: `distill` trains them first; its one iteration (start epoch 0, one
    # expert epoch: any trajectory reaches it) is discarded.
    ours_cmd = ddbench_command(
        "method=mtt", "ipc=1", f"seed={pair.seed}", "dataset=cifar10", f"dataset.root={tree}", "dataset.zca=true",
        f"dataset.cache_dir={cache}", "progress=false", f"method.num_experts={pair.family.experts}",
        f"method.expert_train_epochs={pair.family.expert_train_epochs}", "method.iterations=1",
        "method.max_start_epoch=1", "method.expert_epochs=1", f"results={folder / 'ddbench'}", task="distill")
    step_ours = run_step(folder, "ddbench-experts", ours_cmd, cwd=folder)
    scores_json = folder / "expert_scores.json"
    run_step(folder, "score-experts", [sys.executable, str(MTT_SCRIPT), "_score_experts", "--tree", str(tree),
                                       "--official", fam["buffer_glob"], "--ddbench-cache", str(cache), "--out",
                                       str(scores_json)], cwd=folder)
    official_train = _time_official_training(fam, folder=folder, family=pair.family)
    scores = json.loads(scores_json.read_text())
    final = {side: [curve[-1] for curve in scores[side]] for side in ("ddbench", "official")}
    mean = {side: [statistics.fmean(c[t] for c in scores[side]) for t in range(len(scores[side][0]))]
            for side in ("ddbench", "official")}
    logged = buffer_log_test_accuracies(Path(fam["buffer"]["log"]))  # buffer.py's own test pass
    official_wall = fam["buffer"]["wall_seconds"]
    epochs = pair.family.expert_train_epochs
    return write_entry(
        out, pair=pair.name, method="mtt", dataset="cifar10", ipc=None,
        official={"repository": REPOSITORY, "commit": fam["commit"], "command": fam["buffer"]["command"],
                  "wall_seconds": official_wall, "environment": fam["buffer"]["environment"],
                  "adaptations": _adaptations(distill=False)
                  + [f"buffer.py, its timed run only: {ADAPTATION_NOTES['epoch_timer']}"],
                  "notes": ["buffer.py tests every expert on the test set after every epoch, inside its wall time",
                            CLOCK_NOTE],
                  "timed_run": official_train},
        ddbench={"command": shlex.join(ours_cmd), "git_sha": git_sha_clean(), "run_git_sha": _run_git_sha(folder),
                 "wall_seconds": scores["ddbench_wall"],
                 "wall_seconds_total": step_ours["wall_seconds"], "experts_key": scores["ddbench_key"]},
        budget=pair.budget(), data=_data_record(fam),
        scoring={"evaluator": "one scorer for both sides: dd-bench's ConvNet forward (dd_bench.experts.FlatModel) of "
                              "each snapshot on the test set, whitened by dd-bench's ZCA",
                 "protocol": f"test accuracy after epoch {epochs} (compared); every epoch under per_epoch",
                 "model": "convnet"},
        ours=final["ddbench"], theirs=final["official"],
        wall_time_ratio=scores["ddbench_wall"] / official_train["train_epoch_seconds"],
        reproduce=_reproduce(pair),
        extra={"kind": "experts", "recipe": pair.recipe(),
               "accuracies_are": f"one per expert: its test accuracy after epoch {epochs} (not evaluation networks)",
               "per_epoch": {"epochs": list(range(epochs + 1)), "ddbench": scores["ddbench"],
                             "official": scores["official"], "mean_ddbench": mean["ddbench"],
                             "mean_official": mean["official"],
                             "difference": [a - b for a, b in zip(mean["ddbench"], mean["official"], strict=True)]},
               "cross_check": {"set": "official experts", "evaluator": "buffer.py's own test pass (utils.epoch), "
                               "epochs 1..T", "accuracies_official_evaluator": logged,
                               "mean_official_evaluator": statistics.fmean(c[-1] for c in logged),
                               "mean_ddbench_evaluator": statistics.fmean(final["official"]),
                               "difference": statistics.fmean(final["official"])
                               - statistics.fmean(c[-1] for c in logged)},
               **timing(basis="expert training, dd-bench (the per-expert wall_seconds of its cache's meta.json, "
                              "summed: network init, training epochs, snapshots) / official (buffer.py's "
                              "utils.epoch('train') calls, summed, in a second run of the same command with the "
                              "epoch_timer shim: official.timed_run; its test passes and data loading excluded)",
                        note=timing_note, ddbench_experts=step_ours, official_buffer=fam["buffer"],
                        official_buffer_timed=official_train)})


def _time_official_training(fam: dict[str, Any], *, folder: Path, family: Family) -> dict[str, Any]:
    """Step ``official-buffer-timed``: buffer.py's command again (its own buffer folder) with the ``epoch_timer`` shim,
    so its training epochs can be timed apart from its per-epoch test passes. Its experts are not the shared step's
    (``get_network`` re-seeds from the wall clock: CLOCK_NOTE), so the entry records both runs' mean final test
    accuracy, as buffer.py logged it, to show the timed run did the same work."""
    timed = folder / "official-timed"
    env = {**fam["buffer"]["environment"], "LEDGER_EPOCH_TIMES": str(timed / "epoch_times.json"),
           "PYTHONPATH": str(write_shim(timed / "shim", (*BUFFER_SHIM, "epoch_timer")))}
    command = shlex.split(fam["buffer"]["command"])
    command[command.index("--buffer_path") + 1] = str(timed / "buffers")
    step = run_step(folder, "official-buffer-timed", command, cwd=folder, env=env)
    times = json.loads((timed / "epoch_times.json").read_text())
    final = {name: statistics.fmean(curve[-1] for curve in buffer_log_test_accuracies(Path(log)))
             for name, log in (("timed_run", step["log"]), ("shared_step", fam["buffer"]["log"]))}
    calls = family.experts * family.expert_train_epochs
    if times["train"]["calls"] != calls:
        raise SystemExit(f"[official-buffer-timed] {times['train']['calls']} training epochs timed, expected {calls}")
    return {"command": step["command"], "wall_seconds": step["wall_seconds"], "environment": env,
            "load_average": step.get("load_average"), "train_epoch_seconds": times["train"]["seconds"],
            "test_epoch_seconds": times.get("test", {}).get("seconds", 0.0), "epoch_calls": times,
            "mean_final_test_accuracy_logged": final}


def _run_git_sha(folder: Path) -> str | None:
    """The commit that trained dd-bench's experts (its set's provenance), which ``git_sha`` (the commit writing the
    entry) need not be when an entry is rewritten from finished steps."""
    metas = sorted((folder / "ddbench" / "synsets").glob("*/meta.json"))
    return json.loads(metas[0].read_text()).get("provenance", {}).get("git_sha") if metas else None


def run(pair: MTTPair, **kwargs: Any) -> Path:
    return (run_experts_pair if pair.kind == "experts" else run_distill_pair)(pair, **kwargs)


def main_step(argv: list[str]) -> None:
    """The steps that are our code, each a subprocess of a pair (resumable and logged like the others)."""
    a = step_args(argv, prog="mtt.py", steps={"_subset": SUBSET_STEP,
                                              "_score_experts": ("--tree", "--official", "--ddbench-cache", "--out")})
    if argv[0] == "_subset":
        subset_step(a)
    else:
        score_experts("cifar10", tree=Path(a.tree), official_glob=a.official, ddbench_cache=Path(a.ddbench_cache),
                      out=Path(a.out))


if __name__ == "__main__":
    if len(sys.argv) < 2 or not sys.argv[1].startswith("_"):
        raise SystemExit("run the MTT pairs with scripts/ledger/pair.py (its --list names them)")
    main_step(sys.argv[1:])
