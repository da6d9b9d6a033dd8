"""Write CV-DD's measured priors (``method.priors=sre2l_pp method.prior_file=PATH``) from SRe2L++ run records.

The card's priors are the accuracies of students trained on sets that ONE teacher of the pool distilled
(single-teacher SRe2L++, decoupled-methods.md §5(a), issue CV-DD#1). Run SRe2L++ once per teacher, then:

    for t in cvdd_cifar cvdd_cifar_resnet50 cvdd_cifar_shufflenetv2 cvdd_cifar_mobilenetv2 cvdd_cifar_densenet121; do
        dd-bench run experiment=sre2l_pp_cifar10_ipc50 "method.teachers=[$t]" validation=0.1 results=runs/priors
    done
    python scripts/cvdd_priors.py --results runs/priors --protocol kd-cvdd --model resnet18_cifar --out priors.json

Priors are matched by teacher key: a CV-DD run on other teachers (another recipe, dataset or validation split)
refuses the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dd_bench.methods.committee import priors_from_records, write_prior_file
from dd_bench.results import load_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, required=True, help="a results directory holding sre2l_pp records")
    parser.add_argument("--protocol", default="kd-cvdd")
    parser.add_argument("--model", default="resnet18_cifar")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    entries = priors_from_records(load_records(args.results), protocol=args.protocol, model=args.model)
    write_prior_file(args.out, entries)
    for e in entries:
        print(f"{e['recipe']} ({e['key'][:12]}): {e['accuracy']:.2f}  [{e['source']}]")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
