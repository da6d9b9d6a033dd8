"""GPU check for the decoupled family, within a wall-clock budget, writing each stage's results as it finishes.

Stages: train the teachers the methods need with reduced epoch budgets (each recipe registered under its own
name, ``<recipe>_e<N>``, so its cache key and records say "reduced"), distil each method in ``--methods`` at IPC 10
and score it with its own labels under the `kd` protocol (or a shorter, unranked kd variant with --eval-epochs),
beside a random subset with hard labels and with the same teachers. Records, sets and a stage log go under --out
after every stage.

* issue 7 (default ``--methods sre2l rded``): SRe2L (the CIFAR recipe, fewer recovery iterations when
  --iterations says so) and RDED (the CIFAR recipe) with the `sre2l_cifar` teacher;
* issue 9 (``--methods cvdd infer nrrdd``): CV-DD with a reduced committee of two (ResNet-18 + MobileNetV2 of its
  pool, equal priors: the check has no validation split), INFER with two of its teachers (M = 2: ResNet-18 +
  MobileNetV2) and NRR-DD (a reconstruction) with the SRe2L teacher; --iterations recovery iterations each.

Usage (GPU): python scripts/gpu_check_decoupled.py --data-root /tmp/c10 --out $OUT --budget 200
CPU smoke run: python scripts/gpu_check_decoupled.py --dataset digits --teacher-epochs 2 --iterations 5 \
    --eval-epochs 3 --seeds 2 --student convnet --device cpu --out /tmp/gpu_check_dec [--methods cvdd infer nrrdd]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from dd_bench.data import load_dataset
from dd_bench.eval import custom_protocol, get_protocol
from dd_bench.labels import same_label_kinds
from dd_bench.pipeline.device import resolve_device
from dd_bench.pipeline.distill import distill_to_disk
from dd_bench.pipeline.evaluate import evaluate_to_records
from dd_bench.pipeline.references import reference_records
from dd_bench.results import collect_provenance
from dd_bench.results.bench_report import log_stage as log
from dd_bench.teachers import TEACHER_RECIPES, accuracy, get_recipe, get_teacher

# The teachers each method is checked with, (CIFAR recipes, digits recipes for the CPU smoke run), reduced.
METHOD_TEACHERS = {
    "sre2l": (["sre2l_cifar"], ["digits_convnet_bn_w32_d2"]),
    "rded": (["sre2l_cifar"], ["digits_convnet_bn_w32_d2"]),
    "nrrdd": (["sre2l_cifar"], ["digits_convnet_bn_w32_d2"]),
    "cvdd": (["cvdd_cifar", "cvdd_cifar_mobilenetv2"], ["digits_convnet_bn_w32_d2", "digits_convnet_bn_w64_d2"]),
    "infer": (["infer_cifar_resnet18", "infer_cifar_mobilenetv2"],
              ["digits_convnet_bn_w32_d2", "digits_convnet_bn_w64_d2"]),
}
METHOD_OPTIONS = {"cvdd": {"priors": "equal", "batch_size": 10}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--budget", type=float, default=200.0, help="seconds for the whole check")
    parser.add_argument("--teacher-epochs", type=int, default=5, help="the card's recipe trains 200")
    parser.add_argument("--iterations", type=int, default=1000, help="SRe2L recovery iterations (recipe: 1000)")
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--student", default="resnet18_cifar")
    parser.add_argument("--eval-epochs", type=int, default=None, help="shorter evaluation (an unranked protocol)")
    parser.add_argument("--methods", nargs="+", default=["sre2l", "rded"], choices=sorted(METHOD_TEACHERS))
    args = parser.parse_args()
    start = time.perf_counter()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "cache"
    device = resolve_device(args.device)
    log(out, "start", provenance=collect_provenance(device), args=vars(args))
    real = load_dataset(args.dataset, root=args.data_root, progress=False).to(device)
    log(out, "data", seconds=time.perf_counter() - start, train=len(real.train_labels), test=len(real.test_labels))

    cifar = real.image_size == (32, 32)

    def reduced(base: str) -> str:
        """``base`` with --teacher-epochs, registered under its own name; trained (and logged) once."""
        name = f"{base}_e{args.teacher_epochs}"
        if name not in TEACHER_RECIPES:
            TEACHER_RECIPES.register(name)(dataclasses.replace(get_recipe(base), epochs=args.teacher_epochs))
            t0 = time.perf_counter()
            teacher = get_teacher(real, get_recipe(name), cache_dir=cache, progress=False)
            log(out, f"teacher_{name}", recipe=name, reduced=args.teacher_epochs < get_recipe(base).epochs,
                seconds=time.perf_counter() - t0, parameter_bytes=teacher.parameter_bytes,
                test_accuracy_for_information=accuracy(teacher.module, real.test_images, real.test_labels, real))
        return name

    protocol = (custom_protocol("kd", epochs=args.eval_epochs) if args.eval_epochs else get_protocol("kd"))
    seeds = list(range(args.seeds))
    for method in args.methods:
        if time.perf_counter() - start > args.budget:
            log(out, method, skipped="budget spent")
            continue
        teachers = [reduced(b) for b in METHOD_TEACHERS[method][0 if cifar else 1]]
        options = {**METHOD_OPTIONS.get(method, {}),
                   **({"teachers": teachers} if method in ("cvdd", "infer") else {"teacher": teachers[0]}),
                   **({} if method == "rded" else {"iterations": args.iterations})}
        t0 = time.perf_counter()
        synset, seconds, _ = distill_to_disk(method=method, method_kwargs=options, real=real, ipc=args.ipc, seed=0,
                                             out=out / "synsets" / method, progress=False, cache_dir=cache)
        log(out, f"{method}_distill", seconds=seconds, label_source=synset.label_source)
        records, _ = evaluate_to_records(synset_dir=out / "synsets" / method, real=real, protocol=protocol,
                                         models=[args.student], seeds=seeds, results_dir=out, progress=False,
                                         config={"check": "gpu_check_decoupled", "method": method, **options},
                                         cache_dir=cache, relabel=True)
        section = synset.label_section
        how = same_label_kinds(section, ["auto"])  # INFER's static logits get a static random row
        refs = reference_records(real=real, protocol=protocol, models=[args.student], seeds=seeds, ipcs=[args.ipc],
                                 results_dir=out, kinds=("random_subset",), progress=False, cache_dir=cache,
                                 teachers=section if how else None, teacher_labels=how)
        log(out, f"{method}_evaluate", seconds=time.perf_counter() - t0, protocol=protocol.name,
            accuracies={r.method + ":" + str(r.storage.get("label_source")): r.accuracies for r in records + refs},
            eval_seconds=[r.eval_seconds for r in records + refs])
    log(out, "done", seconds=time.perf_counter() - start)


if __name__ == "__main__":
    main()
