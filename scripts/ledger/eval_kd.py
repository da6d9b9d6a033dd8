"""The kd evaluator pair of the fidelity ledger: a random real subset scored by dd-bench's ``kd`` protocol and by
SRe2L's ``relabel_cifar.py`` (the official routine the ``kd`` protocol follows), with the same conv3 teacher online.

    python scripts/ledger/pair.py eval-kd-cifar10-random-ipc10 --official /path/to/SRe2L --data /path/to/cifar10

A distillation pair compares two sets under one scorer; this compares two scorers on one set, so a difference here is
the evaluators' alone. The distilled-set half of the comparison is the SRe2L pair's cross-check (its official set
under both scorers, ``cross_check`` of ``sre2l-cifar10-ipc10``); this pair adds the random subset, and runs after
that pair, whose dd-bench set lends its labels section (the teacher file, BN in train mode, as relabel_cifar.py).

Steps (resumable): the decoupled family (teacher.py: the tree and the conv3 teacher); ``random-files`` (``ipc`` PNG
files a class drawn without replacement from the family tree's training folders, numpy seed ``seed``, copied
unchanged into ``<index>_<class>/`` folders: what both sides read); ``import-random`` (``dd-bench import
format=imagefolder``); ``attach-labels``; ``ddbench-score`` (``dd-bench evaluate``, the SRe2L pair's overrides); and
``official-<i>`` (relabel_cifar.py as shipped, one run per network, LEDGER_SEED = i; its last test line).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sre2l  # noqa: E402
import teacher as decoupled  # noqa: E402
from harness import (  # noqa: E402
    ROOT,
    ddbench_command,
    git_commit,
    git_sha_clean,
    only_record,
    run_step,
    step_args,
    timing,
    write_entry,
)
from shims import ADAPTATION_NOTES, write_shim  # noqa: E402

REPOSITORY = sre2l.REPOSITORY
SCRIPT = Path(__file__).resolve()


@dataclasses.dataclass(frozen=True)
class EvalKDPair:
    """A random real subset (``ipc`` images a class, ``seed``) under both kd scorers."""

    name: str
    family: decoupled.Family
    ipc: int = 10
    eval_epochs: int = 200  # both sides (relabel_cifar.sh's 400, reduced as the SRe2L pair's)
    nets: int = 5
    seed: int = 0
    smoke: bool = False

    def budget(self) -> dict[str, Any]:
        return {**self.family.budget(), "eval_epochs": self.eval_epochs, "eval_networks": self.nets,
                "student": decoupled.STUDENT, "subset_seed": self.seed}

    def relabel(self) -> sre2l.SRe2LPair:
        """The SRe2L pair whose relabel flags, run folder and dd-bench set this pair shares."""
        base = sre2l.PAIRS["sre2l-cifar10-ipc10"]
        return sre2l.smoke(base) if self.smoke else base


PAIRS: dict[str, EvalKDPair] = {p.name: p for p in (
    EvalKDPair("eval-kd-cifar10-random-ipc10", decoupled.FAMILY),
)}


def smoke(pair: EvalKDPair) -> EvalKDPair:
    """The plumbing check: the smoke family, IPC 1, 1 evaluation epoch (after the SRe2L pair's smoke run)."""
    return dataclasses.replace(pair, family=decoupled.SMOKE_FAMILY, ipc=1, eval_epochs=1, smoke=True)


def random_files(tree: Path, *, ipc: int, seed: int, out: Path) -> dict[str, Any]:
    """``ipc`` training files a class, drawn without replacement from the sorted file list of each class folder with
    ``numpy.random.RandomState(seed)`` (class by class, in folder order), copied unchanged to ``out/<class>/``."""
    rng = np.random.RandomState(seed)
    shutil.rmtree(out, ignore_errors=True)
    picked: list[str] = []
    for folder in sorted(p for p in (tree / "train").iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.is_file())
        if len(files) < ipc:
            raise SystemExit(f"error: {folder} holds {len(files)} images; ipc {ipc} needs that many")
        (out / folder.name).mkdir(parents=True)
        for i in sorted(rng.choice(len(files), ipc, replace=False)):
            shutil.copy2(files[i], out / folder.name / files[i].name)
            picked.append(f"{folder.name}/{files[i].name}")
    return {"dir": str(out), "images": len(picked), "seed": seed,
            "files": picked,
            "files_sha256": hashlib.sha256("\n".join(picked).encode()).hexdigest()}


def run(pair: EvalKDPair, *, official: Path, data: Path, work: Path, out: Path, timing_note: str = "") -> Path:
    small = official / sre2l.SMALL
    if not (small / "relabel_cifar.py").is_file():
        raise SystemExit(f"error: {official} is no SRe2L checkout ({sre2l.SMALL}/relabel_cifar.py is missing)")
    base = pair.relabel()
    fam = decoupled.prepare_family(pair.family, data=data, work=work)
    tree, folder = fam["tree"], work / pair.family.name / pair.name
    like = [p.parent for p in (work / pair.family.name / base.name / "ddbench" / "synsets").glob("*/meta.json")]
    if len(like) != 1:
        raise SystemExit(f"error: run {base.name}{' --smoke' if pair.smoke else ''} first (same --work): its "
                         "dd-bench set lends this pair its labels section")
    folder.mkdir(parents=True, exist_ok=True)
    files = folder / "random-files"
    run_step(folder, "random-files", [sys.executable, str(SCRIPT), "_random", "--tree", str(tree), "--ipc",
                                      str(pair.ipc), "--seed", str(pair.seed), "--out", str(files)], cwd=folder)
    draw = json.loads(files.with_suffix(".json").read_text())
    imported, labelled = folder / "random-imported", folder / "random-set"
    run_step(folder, "import-random", ddbench_command(
        "format=imagefolder", f"path={files}", "dataset=cifar10", f"dataset.root={tree}", f"out={imported}",
        "name=random_subset", task="import"), cwd=folder)
    run_step(folder, "attach-labels", [sys.executable, str(decoupled.SCRIPT), "_attach", "--imported", str(imported),
                                       "--like", str(like[0]), "--out", str(labelled)], cwd=folder)
    scoring = ["dataset=cifar10", f"dataset.root={tree}", "eval=kd", f"eval.epochs={pair.eval_epochs}",
               "models=[convnet_bn]", f"seeds={pair.nets}", "references=[]", "progress=false"]
    ours_cmd = ddbench_command(f"synset={labelled}", *scoring, f"results={folder / 'ddbench'}", task="evaluate")
    step_ours = run_step(folder, "ddbench-score", ours_cmd, cwd=folder)
    run_dir = sre2l.official_run_dir(folder / "official-run", tree=tree)
    teacher_file = fam["files"]["sre2l"]
    env = {"PYTHONPATH": os.pathsep.join([str(write_shim(folder / "shim-relabel", sre2l.RELABEL_SHIM)), str(ROOT)]),
           "LEDGER_NUM_CLASSES": "10"}
    runs, commands = [], []
    flags = dataclasses.replace(base, ipc=pair.ipc, eval_epochs=pair.eval_epochs)
    for i in range(pair.nets):
        cmd = [sys.executable, str(small / "relabel_cifar.py"),
               *flags.relabel_flags(teacher_file=teacher_file, syn=files, out=folder / f"official-{i}")]
        step = run_step(folder, f"official-{i}", cmd, cwd=run_dir, env={**env, "LEDGER_SEED": str(i)})
        runs.append({"seed": i, "tests": sre2l.relabel_accuracies(Path(step["log"])), "seconds": step["wall_seconds"],
                     "step": step})
        commands.append(cmd)
    if not all(r["tests"] for r in runs):
        raise SystemExit(f"error: a relabel_cifar.py run printed no 'Test: Acc@1' line ({folder}/official-*.log)")
    ours = only_record(folder / "ddbench")
    official_seconds = sum(r["seconds"] for r in runs)
    return write_entry(
        out, pair=pair.name, method="evaluator: random set", dataset="cifar10", ipc=pair.ipc,
        official={"repository": REPOSITORY, "commit": git_commit(official), "command": shlex.join(commands[0]),
                  "wall_seconds": official_seconds, "environment": env,
                  "adaptations": [*(f"relabel_cifar.py: {ADAPTATION_NOTES[n]}" for n in ("seed", *sre2l.RELABEL_SHIM)),
                                  *(n for n in sre2l.RUN_TIME_NOTES if not n.startswith("recover_cifar.py: class"))],
                  "routine": "relabel_cifar.py as shipped (SRe2L/*small_dataset), once per network, LEDGER_SEED = "
                             "i; its last 'Test: Acc@1' line",
                  "runs": [{k: r[k] for k in ("seed", "tests", "seconds")} for r in runs]},
        ddbench={"command": shlex.join(ours_cmd), "git_sha": git_sha_clean(), "record_git_sha": ours.git_sha,
                 "wall_seconds": ours.eval_seconds, "wall_seconds_total": step_ours["wall_seconds"],
                 "record_hash": ours.record_hash,
                 "notes": [f"labels: the labels section of {base.name}'s dd-bench set (the family's conv3 teacher "
                           "online, BN in train mode, as relabel_cifar.py), attached by teacher.py _attach"]},
        budget=pair.budget(),
        data={**decoupled.data_record(fam), "set": draw,
              "set_note": "PNG files of the family tree, copied unchanged; both sides decode the same files"},
        scoring={"evaluator": "both: dd-bench's (accuracies.ddbench: eval=kd, SRe2L's relabel_cifar.py recipe) and "
                              "relabel_cifar.py (accuracies.official) on the same files with the same teacher",
                 "protocol": f"kd, eval.epochs={pair.eval_epochs}", "model": "convnet_bn"},
        ours=ours.accuracies, theirs=[r["tests"][-1] for r in runs],
        wall_time_ratio=ours.eval_seconds / official_seconds,
        reproduce=f"python scripts/ledger/pair.py {pair.name} --official SRe2L --data CIFAR10",
        extra={"kind": "evaluators", **timing(
            basis="seconds scoring the set, dd-bench evaluate's eval_seconds / the relabel_cifar.py steps' wall "
                  "(relabel_cifar.py tests every 10 epochs, dd-bench once at the end)",
            note=timing_note, ddbench=step_ours, **{f"official_{r['seed']}": r["step"] for r in runs})})


def main_step(argv: list[str]) -> None:
    """The step that is our code (``_random``), a subprocess of the pair like the others."""
    a = step_args(argv, prog="eval_kd.py", steps={"_random": ("--tree", "--ipc", "--seed", "--out")})
    out = Path(a.out)
    draw = random_files(Path(a.tree), ipc=int(a.ipc), seed=int(a.seed), out=out)
    out.with_suffix(".json").write_text(json.dumps(draw, indent=1))  # beside the folder: the images stay alone


if __name__ == "__main__":
    if len(sys.argv) < 2 or not sys.argv[1].startswith("_"):
        raise SystemExit("run the kd evaluator pair with scripts/ledger/pair.py (its --list names it)")
    main_step(sys.argv[1:])
