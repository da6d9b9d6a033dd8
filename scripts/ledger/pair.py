"""Run one fidelity-ledger pair: an official pipeline and dd-bench's on the same data and budget, both scored.

    python scripts/ledger/pair.py dm-fmnist-ipc1 --official /path/to/DatasetCondensation \\
        --data /path/to/fashion_mnist [--work DIR] [--out results/ledger]
    python scripts/ledger/pair.py mtt-cifar10-ipc1 --official /path/to/mtt-distillation --data /path/to/cifar10
    python scripts/ledger/pair.py datm-cifar10-ipc10 --official /path/to/DATM --data /path/to/cifar10 \\
        [--mtt-official /path/to/mtt-distillation]
    python scripts/ledger/pair.py rded-cifar10-ipc10 --official /path/to/RDED --data /path/to/cifar10
    python scripts/ledger/pair.py sre2l-cifar10-ipc10 --official /path/to/SRe2L --data /path/to/cifar10
    python scripts/ledger/pair.py eval-kd-cifar10-random-ipc10 --official /path/to/SRe2L --data /path/to/cifar10
    python scripts/ledger/pair.py --list

(The MTT pairs, their shared steps and their entries are described in scripts/ledger/mtt.py; the DATM pair, which
starts from the MTT pairs' trajectories, in scripts/ledger/datm.py; the evaluator pairs, one set under both
evaluators, in scripts/ledger/evaluators.py; the decoupled pairs, RDED and SRe2L, in scripts/ledger/rded.py and
scripts/ledger/sre2l.py, with their shared data tree and conv3 teacher in scripts/ledger/teacher.py; the kd evaluator
pair, a random subset under dd-bench's kd protocol and SRe2L's relabel_cifar.py, in scripts/ledger/eval_kd.py.)

Steps (each a subprocess, skipped when its marker exists, so a killed pair resumes; :mod:`harness`):

1. the official distillation, run as shipped (its command line below; environment adaptations named in the entry);
2. dd-bench's distillation and scoring, as a user runs it: ``dd-bench run`` with its defaults plus the budget values;
3. the official set imported (``dd-bench import format=dc``) and scored by dd-bench's evaluator, same protocol;
4. the cross-check: the official set scored by the official evaluation routine (``utils.evaluate_synset``, called by
   a small driver of ours on the official checkout's own functions), beside dd-bench's score of the same set.

The entry (``results/ledger/<pair>.json``) compares dd-bench's set with the official set, both scored by dd-bench's
evaluator, and records the budget, both commands, both wall times and the cross-check.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import datm  # noqa: E402
import eval_kd  # noqa: E402
import evaluators  # noqa: E402
import mtt  # noqa: E402
import rded  # noqa: E402
import sre2l  # noqa: E402
from harness import (  # noqa: E402
    DC_EVALUATE_DRIVER,
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

# Environment adaptations DatasetCondensation needs under today's torch on a CPU (shims.SHIM_PARTS), and the data
# loading each data set needs (Fashion-MNIST: torchvision's own raw files, read by both sides as shipped).
SHIM = ("setitem_overlap", "view_fallback")
DATA_SHIM = {"fashion_mnist": (), "cifar10": ("cifar_imagefolder",)}
DATA_LAYOUT = {"fashion_mnist": "torchvision raw files (read by both sides)",
               "cifar10": "ImageFolder tree from ../shared/data/get-cifar10 (dd-bench reads it as dataset.root; the "
                          "official loader through the cifar_imagefolder adaptation)"}


@dataclasses.dataclass(frozen=True)
class DMPair:
    """DM (official ``main_DM.py`` of VICO-UoE/DatasetCondensation) against ``method=dm``."""

    name: str
    dataset: str  # dd-bench's name
    official_dataset: str  # main_DM.py's --dataset
    ipc: int
    iterations: int  # distillation updates on both sides (main_DM.py runs Iteration + 1: it is passed one less)
    batch_real: int  # real images per class per update (paper: 256)
    eval_epochs: int  # evaluation epochs (mtt protocol; paper: 1000)
    nets: int = 5
    seed: int = 0
    repository: str = "VICO-UoE/DatasetCondensation"
    method: str = "dm"

    def budget(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "batch_real": self.batch_real, "eval_epochs": self.eval_epochs,
                "eval_networks": self.nets, "student": "convnet (ConvNet, instance norm)", "distill_seed": self.seed}


PAIRS: dict[str, DMPair] = {p.name: p for p in (
    DMPair("dm-fmnist-ipc1", "fashion_mnist", "FashionMNIST", ipc=1, iterations=1000, batch_real=64, eval_epochs=300),
    DMPair("dm-fmnist-ipc10", "fashion_mnist", "FashionMNIST", ipc=10, iterations=1000, batch_real=64,
           eval_epochs=300),
    DMPair("dm-cifar10-ipc1", "cifar10", "CIFAR10", ipc=1, iterations=1000, batch_real=64, eval_epochs=300),
    DMPair("dm-cifar10-ipc10", "cifar10", "CIFAR10", ipc=10, iterations=1000, batch_real=64, eval_epochs=300),
)}


def run_dm(pair: DMPair, *, official: Path, data: Path, work: Path, out: Path, timing_note: str = "") -> Path:
    commit = git_commit(official)
    shim_parts = SHIM + DATA_SHIM[pair.dataset]
    shim = write_shim(work / "shim", shim_parts)
    official_out = work / "official"
    official_out.mkdir(parents=True, exist_ok=True)
    # main_DM.py: --eval_mode other than S/SS evaluates only at the last iteration, on --model (get_eval_pool's
    # default branch), which is what a fixed-budget comparison needs; its loop runs Iteration + 1 updates.
    official_cmd = [sys.executable, str(official / "main_DM.py"), "--dataset", pair.official_dataset,
                    "--model", "ConvNet", "--ipc", str(pair.ipc), "--eval_mode", "final", "--num_exp", "1",
                    "--num_eval", str(pair.nets), "--epoch_eval_train", str(pair.eval_epochs),
                    "--Iteration", str(pair.iterations - 1), "--batch_real", str(pair.batch_real), "--init", "real",
                    "--data_path", str(data), "--save_path", str(official_out)]
    env = {"PYTHONPATH": str(shim), "LEDGER_SEED": str(pair.seed)}
    step_official = run_step(work, "official-distill", official_cmd, cwd=official, env=env)

    budget = [f"method.iterations={pair.iterations}", f"method.batch_real={pair.batch_real}",
              f"eval.epochs={pair.eval_epochs}", f"seeds={pair.nets}"]
    common = [f"dataset={pair.dataset}", f"dataset.root={data}", "models=[convnet]", "eval=mtt", "references=[]",
              "progress=false"]
    ours_cmd = ddbench_command(f"method={pair.method}", f"ipc={pair.ipc}", f"seed={pair.seed}", *common, *budget,
                               f"results={work / 'ddbench'}")
    step_ours = run_step(work, "ddbench-run", ours_cmd, cwd=work)

    res_file = official_out / f"res_DM_{pair.official_dataset}_ConvNet_{pair.ipc}ipc.pt"
    imported = work / "official-set"
    run_step(work, "import-official", ddbench_command(
        "format=dc", f"path={res_file}", f"dataset={pair.dataset}", f"dataset.root={data}", "space=normalized",
        f"out={imported}", "name=dm_official", task="import"), cwd=work)
    score_cmd = ddbench_command(f"synset={imported}", *common, f"eval.epochs={pair.eval_epochs}",
                                f"seeds={pair.nets}", f"results={work / 'official-scored'}", task="evaluate")
    step_score = run_step(work, "score-official", score_cmd, cwd=work)

    driver = work / "cross_check_driver.py"
    driver.write_text(DC_EVALUATE_DRIVER)
    cross_json = work / "cross_check.json"
    run_step(work, "cross-check", [sys.executable, str(driver), "--set", str(res_file), "--dataset",
                                   pair.official_dataset, "--data_path", str(data), "--model", "ConvNet", "--out",
                                   str(cross_json), "--dsa_strategy", "color_crop_cutout_flip_scale_rotate", "--nets",
                                   str(pair.nets), "--epoch_eval_train", str(pair.eval_epochs), "--batch_train",
                                   "256", "--lr_net", "0.01"], cwd=official, env=env)

    ours = only_record(work / "ddbench")
    theirs = only_record(work / "official-scored")
    cross = json.loads(cross_json.read_text())["accuracies"]
    # Progress lines before the last iteration only: main_DM.py evaluates at Iteration, before that line is printed.
    official_spi = seconds_per_iteration(Path(step_official["log"]), before=pair.iterations - 1)
    ours_spi = ours.distill_seconds / pair.iterations
    meta = json.loads((Path(ours.synset) / "meta.json").read_text())
    real_fp = (meta.get("provenance") or {}).get("data_fingerprint")
    return write_entry(
        out, pair=pair.name, method=pair.method, dataset=pair.dataset, ipc=pair.ipc,
        official={"repository": pair.repository, "commit": commit, "command": shlex.join(official_cmd),
                  "wall_seconds": official_spi * pair.iterations, "wall_seconds_total": step_official["wall_seconds"],
                  "seconds_per_iteration": official_spi, "environment": env,
                  "adaptations": [ADAPTATION_NOTES[name] for name in ("seed", *shim_parts)],
                  "notes": ["--eval_mode final: main_DM.py evaluates only after the last iteration (its default "
                            "branch of get_eval_pool), on ConvNet",
                            f"--Iteration {pair.iterations - 1}: main_DM.py's loop makes Iteration + 1 updates",
                            "its own in-loop evaluation scores the set one update before the saved one; the "
                            "cross-check scores the saved set"]},
        ddbench={"command": shlex.join(ours_cmd), "git_sha": git_sha_clean(), "record_git_sha": ours.git_sha,
                 "wall_seconds": ours.distill_seconds, "wall_seconds_total": step_ours["wall_seconds"],
                 "seconds_per_iteration": ours_spi, "set_hash": ours.set_hash, "record_hash": ours.record_hash},
        budget=pair.budget(),
        data={"train_subset": "full training set (both sides sample real batches per class from it)",
              "test": "full test set", "root_layout": DATA_LAYOUT[pair.dataset],
              "fingerprint": real_fp},
        scoring={"evaluator": "dd-bench (eval=mtt: DSA, SGD 0.9 / 5e-4, lr 0.01, lr x0.1 at half, batch 256)",
                 "protocol": f"mtt, eval.epochs={pair.eval_epochs}", "model": "convnet",
                 "official_set_command": shlex.join(score_cmd),
                 "official_set_wall_seconds": step_score["wall_seconds"]},
        ours=ours.accuracies, theirs=theirs.accuracies, wall_time_ratio=ours_spi / official_spi,
        reproduce=f"python scripts/ledger/pair.py {pair.name} --official DatasetCondensation --data DATA",
        extra={"cross_check": cross_check(
            evaluator="official utils.evaluate_synset (5 networks, torch.manual_seed(i))", official=cross,
            ddbench=theirs.accuracies),
            **timing(basis="seconds per distillation update, dd-bench / official", note=timing_note,
                     official_distill=step_official, ddbench_run=step_ours)})


def registered() -> dict[str, str]:
    """Every pair this script runs: name -> its official repository (the ledger page lists those not yet measured)."""
    out = {p.name: p.repository for p in PAIRS.values()}
    for module in (mtt, datm, evaluators, rded, sre2l, eval_kd):
        out.update({name: module.REPOSITORY for name in module.PAIRS})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pair", nargs="?", choices=sorted(registered()))
    parser.add_argument("--list", action="store_true", help="print the pairs and their budgets")
    parser.add_argument("--official", type=Path, help="a local checkout of the official repository")
    parser.add_argument("--mtt-official", type=Path,
                        help="the DATM pair: the mtt-distillation checkout whose buffer.py trains the shared experts "
                             "(default: mtt-distillation beside --official)")
    parser.add_argument("--data", type=Path, help="the data root both sides read")
    parser.add_argument("--work", type=Path, default=Path("ledger-work"), help="scratch folder (resumable)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "ledger")
    parser.add_argument("--timing-note", default="",
                        help="what ran beside the pair while it was timed (recorded in the entry as timing_note)")
    parser.add_argument("--smoke", action="store_true",
                        help="a plumbing check at a tiny budget (DM: 22 updates, 3 evaluation epochs; MTT: "
                             "mtt.smoke; DATM: datm.smoke; evaluators: evaluators.smoke; RDED: rded.smoke; SRe2L: "
                             "sre2l.smoke; kd evaluators: eval_kd.smoke); write --out elsewhere")
    args = parser.parse_args()
    if args.list or args.pair is None:
        for pair in PAIRS.values():
            print(f"{pair.name}: {pair.repository}; {pair.budget()}")
        for m in mtt.PAIRS.values():
            print(f"{m.name}: {mtt.REPOSITORY}; {m.budget()}")
        for d in datm.PAIRS.values():
            print(f"{d.name}: {datm.REPOSITORY}; {d.budget()}")
        for e in evaluators.PAIRS.values():
            print(f"{e.name}: {evaluators.REPOSITORY} (evaluators alone, {e.source} set); {e.budget()}")
        for module in (rded, sre2l, eval_kd):
            for p in module.PAIRS.values():
                print(f"{p.name}: {module.REPOSITORY}; {p.budget()}")
        return
    if args.official is None or args.data is None:
        parser.error("--official and --data are required")
    if args.pair in mtt.PAIRS:  # the MTT pairs share their first steps under <work>/<family> (mtt.py)
        m = mtt.smoke(mtt.PAIRS[args.pair]) if args.smoke else mtt.PAIRS[args.pair]
        path = mtt.run(m, official=args.official.resolve(), data=args.data.resolve(), work=args.work.resolve(),
                       out=args.out, timing_note=args.timing_note)
        _summary(path)
        return
    if args.pair in datm.PAIRS:  # from the MTT pairs' trajectories: shares <work>/mtt-cifar10 (datm.py)
        d = datm.smoke(datm.PAIRS[args.pair]) if args.smoke else datm.PAIRS[args.pair]
        mtt_official = args.mtt_official or args.official.resolve().parent / "mtt-distillation"
        path = datm.run(d, official=args.official.resolve(), mtt_official=mtt_official.resolve(),
                        data=args.data.resolve(), work=args.work.resolve(), out=args.out, timing_note=args.timing_note)
        _summary(path)
        return
    if args.pair in evaluators.PAIRS:  # one set, two evaluators (evaluators.py)
        e = evaluators.smoke(evaluators.PAIRS[args.pair]) if args.smoke else evaluators.PAIRS[args.pair]
        path = evaluators.run(e, official=args.official.resolve(), data=args.data.resolve(),
                              work=(args.work / args.pair).resolve(), out=args.out, timing_note=args.timing_note)
        _summary(path)
        return
    decoupled = next((m for m in (rded, sre2l, eval_kd) if args.pair in m.PAIRS), None)
    if decoupled is not None:  # share <work>/<family>: tree and teacher (teacher.py)
        module = decoupled
        p = module.smoke(module.PAIRS[args.pair]) if args.smoke else module.PAIRS[args.pair]
        path = module.run(p, official=args.official.resolve(), data=args.data.resolve(), work=args.work.resolve(),
                          out=args.out, timing_note=args.timing_note)
        _summary(path)
        return
    pair = PAIRS[args.pair]
    if args.smoke:
        pair = dataclasses.replace(pair, iterations=22, eval_epochs=3)
    path = run_dm(pair, official=args.official.resolve(), data=args.data.resolve(),
                  work=(args.work / args.pair).resolve(), out=args.out, timing_note=args.timing_note)
    _summary(path)


def _summary(path: Path) -> None:
    entry = json.loads(path.read_text())
    print(f"{path}: dd-bench {entry['means']['ddbench']:.2f} vs official {entry['means']['official']:.2f} "
          f"(d {entry['difference']:+.2f}, SE {entry['standard_error']:.2f}): {entry['verdict']}; "
          f"time ratio {entry['wall_time_ratio']:.2f}x")


if __name__ == "__main__":
    main()
