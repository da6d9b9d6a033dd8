"""GPU check for trajectory matching, within a wall-clock budget, writing each stage's results as it finishes.

Stages (issue 3): train >= 5 ConvNet experts for >= 22 epochs on real CIFAR-10 (MTT's IPC 10 setting samples start
epochs up to 20, plus 2 expert epochs; with --reduced, fewer epochs and a lower max_start_epoch, labelled
"reduced"), distil MTT and DATM at IPC 10 for as many iterations as fit in their share of the budget (resuming
from the set's own checkpoint in chunks), evaluate 5 seeds of each under the `mtt` protocol, and write run
records, the sets and a stage log under --out after every stage.

Usage (GPU): python scripts/gpu_check_tm.py --data-root /tmp/c10 --out $OUT --budget 280
CPU smoke run: python scripts/gpu_check_tm.py --dataset digits --experts 2 --expert-epochs 4 --max-start 2 \
    --eval-epochs 3 --budget 60 --device cpu --out /tmp/gpu_check
``--selection`` (issue 8) adds MTT's honest checkpoint selection on a validation split and the papers'
test-selected number beside it (``acc_test_selected``, and their difference ``test_selection_bias``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dd_bench.data import load_dataset
from dd_bench.data.validation import split_validation
from dd_bench.eval import custom_protocol, get_protocol
from dd_bench.experts import ExpertRecipe, get_experts
from dd_bench.pipeline.device import resolve_device
from dd_bench.pipeline.distill import distill_to_disk
from dd_bench.pipeline.evaluate import evaluate_to_records
from dd_bench.results import collect_provenance
from dd_bench.results.bench_report import log_stage as log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--zca", action="store_true", help="ZCA-whiten (MTT's CIFAR-10 IPC 10 setting uses it)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--budget", type=float, default=280.0, help="seconds for the whole check")
    parser.add_argument("--experts", type=int, default=5)
    parser.add_argument("--expert-epochs", type=int, default=22)
    parser.add_argument("--max-start", type=int, default=20, help="MTT IPC 10: 20")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--eval-epochs", type=int, default=None, help="shorter evaluation (an unranked protocol)")
    parser.add_argument("--chunk", type=int, default=20, help="distillation iterations between time checks")
    parser.add_argument("--selection", action="store_true",
                        help="issue 8: hold out --val-fraction of the training set (experts train without it), select "
                             "MTT's checkpoint on it every --select-every iterations, and track the papers' "
                             "test-selected checkpoint beside it (the honest and the test-selected number)")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--select-every", type=int, default=100, help="MTT's eval_it")
    parser.add_argument("--select-networks", type=int, default=2)
    parser.add_argument("--select-epochs", type=int, default=None, help="epochs of each selection check")
    args = parser.parse_args()
    start = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    reduced = args.expert_epochs < 22 or args.max_start < 20
    log(out, "start", provenance=collect_provenance(device), args=vars(args), reduced=reduced)

    real = load_dataset(args.dataset, root=args.data_root, zca=args.zca, progress=False).to(device)
    if args.selection:  # everything (experts, ZCA, distillation) trains without the held-out split
        real, _ = split_validation(real, fraction=args.val_fraction, seed=0)
    log(out, "data", seconds=time.perf_counter() - start, train=len(real.train_labels), test=len(real.test_labels),
        validation=0 if real.val_labels is None else len(real.val_labels))

    recipes = {"mtt": ExpertRecipe(epochs=args.expert_epochs, optimizer="sgd"),
               "datm": ExpertRecipe(epochs=args.expert_epochs, optimizer="gsam", rho=0.01, alpha=0.3)}
    for recipe in recipes.values():
        t = time.perf_counter()
        experts = get_experts(real, recipe, num_experts=args.experts, progress=False)
        spent = time.perf_counter() - t
        log(out, f"experts_{recipe.optimizer}", seconds=spent, shape=list(experts.params.shape),
            expert_epochs_per_second=args.experts * args.expert_epochs / max(spent, 1e-9))

    protocol = get_protocol("mtt") if args.eval_epochs is None else custom_protocol("mtt", epochs=args.eval_epochs)
    common = dict(num_experts=args.experts, expert_train_epochs=args.expert_epochs, syn_steps=30, expert_epochs=2,
                  max_start_epoch=args.max_start, lr_lr=1e-5, lr_teacher=0.001, batch_syn=0,
                  checkpoint_every=args.chunk)
    methods = {"mtt": dict(common, lr_img=100.0),
               "datm": dict(common, lr_img=100.0, lr_teacher=0.01, syn_steps=80,
                            current_max_start_epoch=args.max_start // 2, expansion_end_epoch=1000, lr_label=2.0)}
    chunks = {name: args.chunk for name in methods}
    if args.selection:
        # A chunk's last iteration is always a candidate (it ends that call's run): chunks of the selection interval.
        methods["mtt"] = dict(methods["mtt"], eval_every=args.select_every, eval_networks=args.select_networks,
                              eval_epochs=args.select_epochs, paper_selection=True,
                              checkpoint_every=args.select_every)
        chunks["mtt"] = args.select_every
    for i, (name, options) in enumerate(methods.items()):
        # Each method gets half of what is left, minus a reserve for its evaluation.
        left = args.budget - (time.perf_counter() - start)
        share = left / (len(methods) - i)
        eval_reserve = 0.35 * share
        set_dir = out / f"{name}-{args.dataset}-ipc{args.ipc}"
        iterations, t = 0, time.perf_counter()
        while iterations == 0 or time.perf_counter() - t < share - eval_reserve:  # at least one chunk
            iterations += chunks[name]
            distill_to_disk(method=name, method_kwargs=dict(options, iterations=iterations), real=real, ipc=args.ipc,
                            seed=0, out=set_dir, preset="gpu_check" + ("_reduced" if reduced else ""), progress=False)
        log(out, f"distill_{name}", iterations=iterations, seconds=time.perf_counter() - t,
            seconds_per_iteration=(time.perf_counter() - t) / max(iterations, 1))
        t = time.perf_counter()
        try:
            records, _ = evaluate_to_records(synset_dir=set_dir, real=real, protocol=protocol, models=["convnet"],
                                             seeds=list(range(5)), results_dir=out, progress=False,
                                             config={"script": "scripts/gpu_check_tm.py", "args": vars(args),
                                                     "method": {"name": name, **options, "iterations": iterations},
                                                     "reduced": reduced})
        except FloatingPointError as err:  # a diverged set is a finding of the check: record it, go on
            log(out, f"evaluate_{name}", seconds=time.perf_counter() - t, protocol=protocol.name, error=str(err))
            continue
        selected = records[0].extra.get("acc_test_selected")
        selection = records[0].extra.get("distill_status", {}).get("selection")
        log(out, f"evaluate_{name}", seconds=time.perf_counter() - t, protocol=protocol.name,
            accuracies=records[0].accuracies, acc_mean=records[0].acc_mean, acc_std=records[0].acc_std,
            **({} if selected is None else {
                "acc_test_selected": selected["mean"], "test_selection_bias": selected["mean"] - records[0].acc_mean,
                "validation_curve": selection["curve"], "test_curve": selection["paper_selection"]["curve"],
                "selection_seconds": selection["seconds"], "selection_share": selection["share_of_wall_time"]}))
    log(out, "done", seconds=time.perf_counter() - start)


if __name__ == "__main__":
    main()
