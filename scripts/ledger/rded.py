"""The RDED pair of the fidelity ledger (LINs-lab/RDED, CIFAR-10 IPC 10, conv3 -> conv3), run through pair.py.

    python scripts/ledger/pair.py rded-cifar10-ipc10 --official /path/to/RDED --data /path/to/cifar10

The official setting is ``scripts/cifar10_10ipc_conv3_to_conv3_cr5.sh`` (``main.py --subset cifar10 --arch-name conv3
--factor 1 --num-crop 5 --mipc 300 --ipc 10 --stud-name conv3 --re-epochs 300``). ``main.py`` runs the synthesis
(``synthesize.main.main``) and then one student (``validation.main.main``, seed 42); the pair calls the same two
functions of the checkout apart, through drivers of ours: the synthesis once (``official-distill``, timed alone) and
the validation once per evaluation network (``cross-check``, seeds 0..N-1), with the same flags.

Both sides start from the decoupled family (teacher.py: the tree, whose ``per_class`` = ``mipc`` images a class are
each side's whole candidate pool, and the conv3 teacher). Steps: ``official-distill``; ``ddbench-distill`` (``dd-bench
distill experiment=rded_cifar10_ipc10`` with the conv3 teacher file and the budget values, timed whole as the
official step is); ``ddbench-score`` (``dd-bench evaluate`` of that set, the conv3 student);
``import-official`` (the official JPEG tree, ``format=imagefolder classes=``); ``attach-labels`` (the same teacher's
online labels: teacher.attach_teacher); ``score-official`` (dd-bench's evaluator, the same protocol); ``cross-check``
(RDED's ``validation/main.py`` on the official set, N networks).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import teacher as decoupled  # noqa: E402
from harness import (  # noqa: E402
    cross_check,
    ddbench_command,
    git_commit,
    only_record,
    run_step,
    timing,
    write_entry,
)
from shims import ADAPTATION_NOTES, write_shim  # noqa: E402

REPOSITORY = "LINs-lab/RDED"
OFFICIAL_SCRIPT = "scripts/cifar10_10ipc_conv3_to_conv3_cr5.sh"
EXPERIMENT = "rded_cifar10_ipc10"
SHIM = ("cuda_on_cpu", "cuda_copy")  # shims.SHIM_PARTS, with seed
FIXED_FLAGS = ("--subset", "cifar10", "--arch-name", "conv3", "--stud-name", "conv3")

# main.py's first half (main.py:10-11): argument.py parses the flags (sys.argv) at import, then the synthesis.
SYNTH_DRIVER = '''\
import sys
official = sys.argv[1]
sys.argv = ["main.py", *sys.argv[2:]]
sys.path.insert(0, official)
from argument import args
from synthesize.main import main
main(args)
'''

# main.py's second half, once per network with args.seed = i (validation.main.main seeds random and torch with it);
# each test accuracy the loop computes (epoch, top-1) is recorded by wrapping validation.main.validate.
VALIDATE_DRIVER = '''\
import json, sys, time
official, out, nets = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.argv = ["main.py", *sys.argv[4:]]
sys.path.insert(0, official)
from argument import args
import validation.main as vm
runs, validate = [], vm.validate
def recorded(model, args, epoch=None):
    top1 = validate(model, args, epoch)
    runs[-1]["tests"].append([epoch, float(top1)])
    return top1
vm.validate = recorded
for i in range(nets):
    args.seed = i
    runs.append({"seed": i, "tests": []})
    start = time.perf_counter()
    vm.main(args)
    runs[-1]["seconds"] = time.perf_counter() - start
json.dump({"runs": runs, "re_batch_size": args.re_batch_size, "workers": args.workers,
           "temperature": args.temperature, "adamw_lr": args.adamw_lr}, open(out, "w"))
'''

RUN_TIME_NOTES = (
    "data loading: RDED reads ./data/cifar10/train/<5-digit class>/ and ./data/cifar10/val/<5-digit class>/ "
    "(argument.py sets train_dir and val_dir from --subset; validation/utils.py ImageFolder joins "
    "str(class).zfill(5)): the run folder holds those names as symlinks to the family tree's class folders "
    "(train/: the subset, val/: the full test set; the same files dd-bench reads)",
    "teacher: ./data/pretrain_models/cifar10_conv3.pth (synthesize/utils.py:237-240) is the family's conv3 as "
    "{'model': state} in RDED's ConvNet keys, its first convolution folded from dd-bench's CIFAR normalisation to the "
    "ImageNet constants RDED normalises with (synthesize/utils.py:77, validation/main.py:111-113): the same function "
    "of the pixels except on the zero-padded border (teacher.json: accuracy in both spaces, prediction agreement)",
    "main.py is split: official-distill runs its first call (synthesize.main.main) through a driver of ours, "
    "cross-check its second (validation.main.main) once per network with args.seed = i; the flags are the shipped "
    "script's with the budget's values",
    "seed: synthesize/main.py seeds nothing; the shim seeds random, numpy and torch from LEDGER_SEED (the candidate "
    "draw random.shuffle and the crops); validation.main.main seeds random and torch with args.seed, numpy (CutMix's "
    "lambda) keeps the shim's stream",
)


@dataclasses.dataclass(frozen=True)
class RDEDPair:
    """RDED's main.py (its two halves) against ``dd-bench run experiment=rded_cifar10_ipc10``; the budget table
    (BUDGET_KEYS) hands each value to both sides. ``reduced``: (field, the official script's value)."""

    name: str
    family: decoupled.Family
    ipc: int
    factor: int
    num_crop: int
    mipc: int
    eval_epochs: int
    nets: int = 5
    seed: int = 0
    reduced: tuple[tuple[str, Any], ...] = ()
    smoke: bool = False

    def budget(self) -> dict[str, Any]:
        return {**self.family.budget(), **{f: getattr(self, f) for f, _, _ in BUDGET_KEYS if f != "ipc"},
                "eval_networks": self.nets, "student": decoupled.STUDENT, "distill_seed": self.seed}

    def official_flags(self) -> list[str]:
        return [*FIXED_FLAGS, *[x for field, flag, _ in BUDGET_KEYS for x in (flag, str(getattr(self, field)))]]

    def ddbench_overrides(self) -> list[str]:
        return [f"{key}={getattr(self, field)}" for field, _, key in BUDGET_KEYS]

    def exp_name(self) -> str:
        """argument.py's result folder name (./exp/<name>/syn_data)."""
        return f"cifar10_conv3_f{self.factor}_mipc{self.mipc}_ipc{self.ipc}_cr{self.num_crop}"


# (field, main.py flag, dd-bench override): the one table that hands each budget value to both sides. eval_epochs is
# --re-epochs of the official validation (the cross-check) and eval.epochs of dd-bench's evaluator (both sets).
BUDGET_KEYS = (("ipc", "--ipc", "ipc"), ("factor", "--factor", "method.factor"),
               ("num_crop", "--num-crop", "method.num_crop"), ("mipc", "--mipc", "method.mipc"),
               ("eval_epochs", "--re-epochs", "eval.epochs"))
# The script's values but the evaluation epochs (300 -> 200): about 60 min on 2 idle cores (results/ledger/README.md).
PAIRS: dict[str, RDEDPair] = {p.name: p for p in (
    RDEDPair("rded-cifar10-ipc10", decoupled.FAMILY, ipc=10, factor=1, num_crop=5, mipc=300, eval_epochs=200,
             reduced=(("eval_epochs", 300),)),
)}


def smoke(pair: RDEDPair) -> RDEDPair:
    """The plumbing check: 20 images a class, a 1-epoch teacher, IPC 1 (argument.py sizes batches for IPC 1, 10, 50
    only), 2 crops, 6 evaluation epochs (RDED validates only after 80% of them: at 6, once, at the last)."""
    return dataclasses.replace(pair, family=decoupled.SMOKE_FAMILY, ipc=1, num_crop=2, mipc=20, eval_epochs=6,
                               smoke=True)


def official_run_dir(run: Path, *, tree: Path, teacher_file: Path) -> Path:
    """The folder RDED runs in: ./data/cifar10/{train,val}/<00000..> and ./data/pretrain_models/cifar10_conv3.pth as
    symlinks to the family's files (no copy); ./exp/ is written there."""
    for split, theirs in (("train", "train"), ("test", "val")):
        target = run / "data" / "cifar10" / theirs
        target.mkdir(parents=True, exist_ok=True)
        for folder in sorted(p for p in (tree / split).iterdir() if p.is_dir()):
            link = target / f"{int(folder.name.split('_', 1)[0]):05d}"
            if not link.is_symlink():
                link.symlink_to(folder.resolve(), target_is_directory=True)
    pretrained = run / "data" / "pretrain_models" / "cifar10_conv3.pth"
    pretrained.parent.mkdir(parents=True, exist_ok=True)
    if not pretrained.is_symlink():
        pretrained.symlink_to(teacher_file.resolve())
    return run


def validation_scores(cross: dict[str, Any], *, epochs: int) -> dict[str, list[float]]:
    """Each network's accuracy at the last epoch (what the student ends with) and its best test accuracy (what
    main.py prints, "Best accuracy"), from the cross-check driver's record."""
    final, best = [], []
    for run in cross["runs"]:
        last_epoch, last = run["tests"][-1] if run["tests"] else (None, None)
        if last_epoch != epochs - 1:
            raise SystemExit(f"error: RDED validated network {run['seed']} last at epoch {last_epoch}, not "
                             f"{epochs - 1}: it tests only after 80% of --re-epochs (use more than 5)")
        final.append(last)
        best.append(max(acc for _, acc in run["tests"]))
    return {"final": final, "best": best}


def run(pair: RDEDPair, *, official: Path, data: Path, work: Path, out: Path, timing_note: str = "") -> Path:
    if pair.mipc != pair.family.per_class:
        raise SystemExit(f"error: mipc {pair.mipc} must be the family's per_class {pair.family.per_class} (the "
                         "candidate pool both sides draw from)")
    fam = decoupled.prepare_family(pair.family, data=data, work=work)
    tree, folder = fam["tree"], work / pair.family.name / pair.name
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = official_run_dir(folder / "official-run", tree=tree, teacher_file=fam["files"]["rded"])
    env = {"PYTHONPATH": str(write_shim(folder / "shim", SHIM)), "LEDGER_SEED": str(pair.seed)}
    synth, validate = folder / "synth_driver.py", folder / "validate_driver.py"
    synth.write_text(SYNTH_DRIVER)
    validate.write_text(VALIDATE_DRIVER)
    official_cmd = [sys.executable, str(synth), str(official), *pair.official_flags()]
    step_official = run_step(folder, "official-distill", official_cmd, cwd=run_dir, env=env)
    syn_dir = run_dir / "exp" / pair.exp_name() / "syn_data"

    # Both sets are scored by the same evaluate overrides.
    scoring = ["dataset=cifar10", f"dataset.root={tree}", "eval=kd-rded", f"eval.epochs={pair.eval_epochs}",
               "models=[convnet_bn]", f"seeds={pair.nets}", "references=[]", "progress=false"]
    side = decoupled.ddbench_side(folder, distill=[
        f"experiment={EXPERIMENT}", f"seed={pair.seed}", f"dataset.root={tree}",
        f"method.teacher={decoupled.ARCH_RECIPE}", f"method.teacher_weights={fam['files']['ddbench']}",
        *[o for o in pair.ddbench_overrides() if not o.startswith("eval.")]], score=scoring)
    imported, labelled = folder / "official-imported", folder / "official-set"
    classes = decoupled.class_names_file(tree, folder / "classes.txt")
    run_step(folder, "import-official", ddbench_command(
        "format=imagefolder", f"path={syn_dir}", f"classes={classes}", "dataset=cifar10", f"dataset.root={tree}",
        f"out={imported}", "name=rded_official", task="import"), cwd=folder)
    run_step(folder, "attach-labels", [sys.executable, str(decoupled.SCRIPT), "_attach", "--imported", str(imported),
                                       "--like", str(side["synset"]), "--out", str(labelled)], cwd=folder)
    score_cmd = ddbench_command(f"synset={labelled}", *scoring, f"results={folder / 'official-scored'}",
                                task="evaluate")
    step_score = run_step(folder, "score-official", score_cmd, cwd=folder)
    cross_json = folder / "cross_check.json"
    cross_cmd = [sys.executable, str(validate), str(official), str(cross_json), str(pair.nets),
                 *pair.official_flags()]
    step_cross = run_step(folder, "cross-check", cross_cmd, cwd=run_dir, env=env)
    return _entry(pair, fam=fam, folder=folder, out=out, timing_note=timing_note, commit=git_commit(official),
                  commands={"official": official_cmd, "ours": side["distill_command"],
                            "ours_score": side["score_command"], "score": score_cmd, "cross": cross_cmd},
                  steps={"official": step_official, "ours": side["distill_step"], "ours_score": side["score_step"],
                         "score": step_score, "cross": step_cross},
                  env=env, syn_dir=syn_dir)


def _entry(pair: RDEDPair, *, fam: dict[str, Any], folder: Path, out: Path, timing_note: str, commit: str,
           commands: dict[str, list[str]], steps: dict[str, dict[str, Any]], env: dict[str, str],
           syn_dir: Path) -> Path:
    ours, theirs = only_record(folder / "ddbench"), only_record(folder / "official-scored")
    cross = json.loads((folder / "cross_check.json").read_text())
    scores = validation_scores(cross, epochs=pair.eval_epochs)
    official_wall = steps["official"]["wall_seconds"]
    cross_seconds = sum(r["seconds"] for r in cross["runs"])
    best = lambda record: (record.extra.get("best_during_training") or {}).get("accuracies")  # noqa: E731
    shipped = shlex.join(["python", "main.py", *pair.official_flags()])
    return write_entry(
        out, pair=pair.name, method="rded", dataset="cifar10", ipc=pair.ipc,
        official={"repository": REPOSITORY, "commit": commit, "command": shlex.join(commands["official"]),
                  "shipped_command": f"{shipped}  ({OFFICIAL_SCRIPT} with the budget's values)",
                  "wall_seconds": official_wall, "environment": env, "synthetic_set": str(syn_dir),
                  "adaptations": [*(ADAPTATION_NOTES[n] for n in ("seed", *SHIM)), *RUN_TIME_NOTES],
                  "notes": ["wall_seconds: the whole official-distill step (interpreter start, imports, loading the "
                            "candidates through 4 DataLoader workers, the selection, the JPEG files)",
                            f"argument.py derives, for this budget: batch {cross['re_batch_size']}, DataLoader "
                            f"workers {cross['workers']}, T {cross['temperature']}, AdamW lr {cross['adamw_lr']}",
                            "the images are saved as JPEG (PIL's quality 75, synthesize/main.py:67-69) and the "
                            "validation trains on those files; dd-bench's experiment stores its set the same way "
                            "(image_store=jpeg)"]},
        ddbench=decoupled.ddbench_entry(ours, commands=commands, steps=steps, experiment=EXPERIMENT, bn="eval"),
        budget=pair.budget(), data={**decoupled.data_record(fam), "root_layout": (
            "one ImageFolder tree (train/: the subset, test/: the full test set; PNG, <index>_<class> folders): "
            "dd-bench's dataset.root; RDED's ./data/cifar10/{train,val}/<00000..> symlink to its class folders")},
        scoring={"evaluator": "dd-bench (eval=kd-rded: AdamW 1e-3 / 0.01 on weights only, half cosine eta 2, "
                              "RandomResizedCrop (1, 1) + flip, CutMix 1.0, KL at T=20, batch by IPC, the teacher "
                              "online in eval mode), final epoch",
                 "protocol": f"kd-rded, eval.epochs={pair.eval_epochs}", "model": "convnet_bn",
                 "official_set_command": shlex.join(commands["score"]),
                 "official_set_wall_seconds": steps["score"]["wall_seconds"],
                 "best_during_training": {"ddbench": best(ours), "official": best(theirs)}},
        ours=ours.accuracies, theirs=theirs.accuracies, wall_time_ratio=steps["ours"]["wall_seconds"] / official_wall,
        reproduce=f"python scripts/ledger/pair.py {pair.name} --official RDED --data CIFAR10",
        extra={"recipe": {"official_script": OFFICIAL_SCRIPT, "experiment": EXPERIMENT,
                          "reduced_from_official": dict(pair.reduced), "teacher": decoupled.teacher_record(fam)},
               "cross_check": cross_check(
                   evaluator=f"official validation/main.py ({pair.nets} networks, args.seed = i; the accuracy at "
                             "the last epoch, as dd-bench's final number)",
                   official=scores["final"], ddbench=theirs.accuracies, best_official=scores["best"],
                   best_ddbench=best(theirs), runs=cross["runs"], command=shlex.join(commands["cross"]),
                   wall_seconds=cross_seconds),
               "evaluation_timing": {"ddbench_seconds": theirs.eval_seconds, "official_seconds": cross_seconds,
                                     "ratio": theirs.eval_seconds / cross_seconds if cross_seconds else None,
                                     "basis": f"the official set's {pair.nets} networks: dd-bench evaluate's "
                                              "eval_seconds / the official validation's, test passes included"},
               **timing(basis="whole commands: dd-bench distill / the official synthesis step, each with its "
                              "interpreter start-up, imports and data loading", note=timing_note,
                        official_distill=steps["official"], ddbench_distill=steps["ours"],
                        ddbench_score=steps["ours_score"], cross_check=steps["cross"])})

