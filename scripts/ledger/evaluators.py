"""The evaluator pairs of the fidelity ledger: one set scored by dd-bench's evaluator and by the official routine.

    python scripts/ledger/pair.py eval-mtt-fmnist-dc-ipc1 --official /path/to/DatasetCondensation \\
        --data /path/to/fashion_mnist

A distillation pair compares two sets under one scorer; these compare two scorers on one set, so a difference here
is the evaluators' alone. The ``mtt`` protocol is MTT's ``evaluate_synset``, which MTT took from DatasetCondensation's
``utils.py`` (DSA, SGD momentum 0.9, weight decay 5e-4, lr 0.01 divided by 10 at half the epochs, batch 256), so the
official side is that routine in the DatasetCondensation checkout, called by a small driver of ours.

The sets, both Fashion-MNIST at IPC 1, both on the full test set:

* ``dc``: the DC set committed under ``results/gradient_matching/`` (the paper preset in full on real data);
* ``random``: a class-balanced random real subset, ``dd-bench distill method=random`` at the pair's seed.

Steps (resumable, :func:`harness.run_step`): the set (random only), ``dd-bench export format=pt`` (the stored
tensors in the model space, which is DatasetCondensation's normalisation of Fashion-MNIST: mean 0.2861, std 0.3530),
``dd-bench evaluate`` (``eval=mtt eval.epochs=E seeds=N``) and the official routine on the exported tensors (N
networks, ``torch.manual_seed(i)`` before network i, as the distillation pairs' cross-check).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    DC_EVALUATE_DRIVER,
    ROOT,
    ddbench_command,
    git_commit,
    git_sha_clean,
    only_record,
    run_step,
    timing,
    write_entry,
)
from shims import ADAPTATION_NOTES, write_shim  # noqa: E402

REPOSITORY = "VICO-UoE/DatasetCondensation"
# Today's torch on a CPU needs these to run DatasetCondensation's utils.py as shipped (shims.ADAPTATION_NOTES).
SHIM = ("setitem_overlap", "view_fallback")
DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"  # DatasetCondensation's and MTT's default --dsa_strategy


@dataclasses.dataclass(frozen=True)
class EvalPair:
    """One set (``source``: ``dc``, the committed DC set; ``random``, a random real subset) under both evaluators."""

    name: str
    source: str
    dataset: str = "fashion_mnist"
    official_dataset: str = "FashionMNIST"
    ipc: int = 1
    eval_epochs: int = 300  # both sides (the mtt protocol's 1000, reduced as the distillation pairs are)
    nets: int = 10
    seed: int = 0  # the random subset's seed

    def budget(self) -> dict[str, Any]:
        return {"eval_epochs": self.eval_epochs, "eval_networks": self.nets, "student": "convnet (ConvNet, "
                "instance norm)", "lr": 0.01, "batch_train": 256, "augmentation": f"DSA {DSA_STRATEGY}",
                **({"subset_seed": self.seed} if self.source == "random" else {})}


COMMITTED_DC_SET = ROOT / "results" / "gradient_matching" / "synsets" / "dc-fashion_mnist-ipc1-s0-16eedb161dd4"
PAIRS: dict[str, EvalPair] = {p.name: p for p in (
    EvalPair("eval-mtt-fmnist-dc-ipc1", "dc"),
    EvalPair("eval-mtt-fmnist-random-ipc1", "random"),
)}


def smoke(pair: EvalPair) -> EvalPair:
    return dataclasses.replace(pair, eval_epochs=2, nets=5)


def run(pair: EvalPair, *, official: Path, data: Path, work: Path, out: Path, timing_note: str = "") -> Path:
    commit = git_commit(official)
    shim = write_shim(work / "shim", SHIM)
    common = [f"dataset={pair.dataset}", f"dataset.root={data}", "progress=false"]
    if pair.source == "dc":
        synset, set_cmd = COMMITTED_DC_SET, None
    else:
        set_cmd = ddbench_command("method=random", f"ipc={pair.ipc}", f"seed={pair.seed}", *common,
                                  f"out={work / 'set'}", task="distill")
        run_step(work, "random-set", set_cmd, cwd=work)
        synset = _only_set(work / "set")
    export = work / "export"
    run_step(work, "export", ddbench_command(f"synset={synset}", "format=pt", f"out={export}", *common,
                                             task="export"), cwd=work)
    ours_cmd = ddbench_command(f"synset={synset}", *common, "models=[convnet]", "eval=mtt",
                               f"eval.epochs={pair.eval_epochs}", f"seeds={pair.nets}", "references=[]",
                               f"results={work / 'ddbench'}", task="evaluate")
    step_ours = run_step(work, "ddbench-evaluate", ours_cmd, cwd=work)
    driver = work / "official_evaluate.py"
    driver.write_text(DC_EVALUATE_DRIVER)
    theirs_json = work / "official.json"
    official_cmd = [sys.executable, str(driver), "--set", str(export / "synset.pt"), "--dataset",
                    pair.official_dataset, "--data_path", str(data), "--model", "ConvNet", "--out", str(theirs_json),
                    "--dsa_strategy", DSA_STRATEGY, "--nets", str(pair.nets), "--epoch_eval_train",
                    str(pair.eval_epochs), "--batch_train", "256", "--lr_net", "0.01", "--layout", "export"]
    env = {"PYTHONPATH": str(shim), "LEDGER_SEED": str(pair.seed)}
    step_official = run_step(work, "official-evaluate", official_cmd, cwd=official, env=env)

    ours = only_record(work / "ddbench")
    theirs = json.loads(theirs_json.read_text())
    meta = json.loads((Path(synset) / "meta.json").read_text())
    return write_entry(
        out, pair=pair.name, method=f"evaluator: {meta['method']} set", dataset=pair.dataset, ipc=pair.ipc,
        official={"repository": REPOSITORY, "commit": commit, "command": shlex.join(official_cmd),
                  "wall_seconds": theirs["scoring_seconds"], "wall_seconds_total": step_official["wall_seconds"],
                  "environment": env, "adaptations": [ADAPTATION_NOTES[n] for n in ("seed", *SHIM)],
                  "routine": "utils.evaluate_synset (DSA, SGD 0.9 / 5e-4, lr x0.1 at half the epochs, batch 256), "
                             "called by a driver of ours on the exported tensors; torch.manual_seed(i) before "
                             "network i"},
        ddbench={"command": shlex.join(ours_cmd), "git_sha": git_sha_clean(), "record_git_sha": ours.git_sha,
                 "wall_seconds": ours.eval_seconds, "wall_seconds_total": step_ours["wall_seconds"],
                 "set_hash": ours.set_hash, "record_hash": ours.record_hash},
        budget=pair.budget(),
        data={"train_subset": "none: only the set is trained on" if pair.source == "dc" else
              f"the set is a class-balanced random subset of the full training set (seed {pair.seed})",
              "test": "full test set", "set": str(Path(synset).relative_to(ROOT)) if pair.source == "dc" else
              f"dd-bench distill method=random (set hash {meta.get('set_hash', ours.set_hash)})",
              **({"set_command": shlex.join(set_cmd)} if set_cmd else {})},
        scoring={"evaluator": "both: dd-bench's (accuracies.ddbench) and the official routine (accuracies.official) "
                              "on the same tensors", "protocol": f"mtt, eval.epochs={pair.eval_epochs}",
                 "model": "convnet"},
        ours=ours.accuracies, theirs=theirs["accuracies"], wall_time_ratio=ours.eval_seconds
        / theirs["scoring_seconds"],
        reproduce=f"python scripts/ledger/pair.py {pair.name} --official DatasetCondensation --data DATA",
        extra={"kind": "evaluators", **timing(
            basis="seconds scoring the set (every network, the test passes included), dd-bench / official",
            note=timing_note, official=step_official, ddbench=step_ours)})


def _only_set(folder: Path) -> Path:
    sets = [p.parent for p in folder.rglob("meta.json")]
    if len(sets) != 1:
        raise SystemExit(f"error: expected one set under {folder}; found {len(sets)}")
    return sets[0]
