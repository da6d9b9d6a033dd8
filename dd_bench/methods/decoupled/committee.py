"""CV-DD's committee (decoupled-methods.md §5(a), ``recover/recover.py``, ``utils_recover.py``): who votes on each
ipc id, with which weight, and where the priors come from.

* **Weights** ``w = softmax(alpha / tau)`` over the chosen members' priors alpha (percent accuracies): tau = 5 in
  the recovery (``--weight-temperature``), tau = 10 over the whole pool in the relabelling.
* **Pairs** (N = 2 voters per ipc id): at IPC 1 the official pair for the dataset when the pool is the official
  one (CIFAR-10 {MobileNetV2, DenseNet-121}, CIFAR-100 {ShuffleNetV2, MobileNetV2}), otherwise the top-2 by prior
  (``model_setting 4``); at IPC 10 the fixed list of pairs in combination order of the pool ((R18, R50), (R18,
  SV2), ..., (MBv2, D121): ``model_setting 5``; a pool of another size cycles through its own combinations);
  otherwise a seeded random pair per ipc id (the official ``random.sample`` is unseeded).
* **Priors** (``priors=``): ``sre2l_pp`` (the paper presets): the card's priors, the accuracy of a student trained
  on a set ONE teacher of the pool distilled (single-teacher SRe2L++), from a prior file (:func:`load_prior_file`),
  one per teacher, matched by teacher key; ``dd-bench run`` / ``distill`` find or make the sets and score them on
  the validation split, never the test set (:mod:`dd_bench.pipeline.cvdd_priors`); ``validation``: each teacher's own
  accuracy on the validation split, a labelled proxy; ``official``: the repo's hard-coded numbers, only for its own
  five teachers (labelled: measured on the authors' teachers, on the test set); ``equal``: weight 1/N
  (``--voter-type equal``).
"""

from __future__ import annotations

import enum
import itertools
import math
from pathlib import Path
from typing import Any

import torch

from dd_bench.errors import UserError
from dd_bench.io import read_json_file


class Priors(enum.StrEnum):
    validation = "validation"
    sre2l_pp = "sre2l_pp"
    official = "official"
    equal = "equal"


# The official pool, in the order of ``model_choice`` (setting 3), as the suite's teacher recipes.
OFFICIAL_POOL = ("cvdd_cifar", "cvdd_cifar_resnet50", "cvdd_cifar_shufflenetv2", "cvdd_cifar_mobilenetv2",
                 "cvdd_cifar_densenet121")
OFFICIAL_TINY_POOL = ("cvdd_tiny", "cvdd_tiny_resnet50", "cvdd_tiny_shufflenetv2", "cvdd_tiny_mobilenetv2",
                      "cvdd_tiny_densenet121")


def official_pool(dataset: str) -> tuple[str, ...]:
    """The suite's recipes of the official five-teacher pool for ``dataset`` (R18, R50, SV2, MBv2, D121)."""
    return OFFICIAL_TINY_POOL if dataset == "tiny_imagenet" else OFFICIAL_POOL


# model_prior_weight_dict (R18, R50, SV2, MBv2, D121) at the official HEAD 24097e9: recover/recover.py:269
# (CIFAR-10; also relabel/scripts/cifar10_experiment/*.sh --model-weight), :260 (CIFAR-100), :293 (Tiny): SRe2L++
# student test accuracies of the authors' teachers (issue CV-DD#1). Commit adbfd30 rounded the CIFAR values
# (before it: e.g. CIFAR-10 D121 67.57, CIFAR-100 R50 60.58).
OFFICIAL_PRIORS = {
    "cifar10": (63.0, 65.3, 68.5, 67.6, 67.4),
    "cifar100": (64.0, 60.6, 51.6, 59.4, 56.4),
    "tiny_imagenet": (46.5, 28.3, 43.6, 44.8, 41.5),
}
# model_setting 4 names these pairs (pool indices); other datasets take the top-2 by prior.
OFFICIAL_IPC1_PAIRS = {"cifar10": (3, 4), "cifar100": (2, 3)}
PRIOR_FILE_FORMAT = "dd-bench-cvdd-priors"


def prior_weights(priors: list[float] | tuple[float, ...], temperature: float) -> list[float]:
    """softmax(alpha / tau), computed in float64 as the official numpy code does."""
    if not temperature > 0:
        raise UserError(f"cvdd: a prior temperature must be > 0; got {temperature}")
    scaled = [a / temperature for a in priors]
    top = max(scaled)
    exps = [math.exp(s - top) for s in scaled]
    return [e / sum(exps) for e in exps]


def committees(*, ipc: int, pool_size: int, size: int, priors: list[float], dataset: str, official_pool: bool,
               generator: torch.Generator) -> list[tuple[int, ...]]:
    """The pool indices voting on each ipc id, ``ipc`` tuples of ``size`` (sorted, pool order)."""
    if not 1 <= size <= pool_size:
        raise UserError(f"cvdd: committee_size {size} needs 1 <= size <= the {pool_size} teacher(s) of the pool")
    if size == pool_size:
        return [tuple(range(pool_size))] * ipc
    if ipc == 1 and size == 2:
        if official_pool and dataset in OFFICIAL_IPC1_PAIRS:
            return [OFFICIAL_IPC1_PAIRS[dataset]]
        top = sorted(range(pool_size), key=lambda i: (-priors[i], i))[:2]
        return [tuple(sorted(top))]
    if ipc == 10:
        combos = list(itertools.combinations(range(pool_size), size))
        return [combos[i % len(combos)] for i in range(ipc)]
    return [tuple(sorted(torch.randperm(pool_size, generator=generator)[:size].tolist())) for _ in range(ipc)]


def load_prior_file(path: str | Path, teachers: list[dict[str, Any]]) -> list[float]:
    """The measured SRe2L++ priors of ``teachers`` (specs with ``recipe`` and ``key``) from a prior file.

    Format (JSON): ``{"format": "dd-bench-cvdd-priors", "priors": [{"recipe", "key", "accuracy", "source"}, ...]}``
    with one entry per teacher, ``accuracy`` in percent (dd-bench's entries also name their ``split``:
    validation). Entries are matched by teacher key: priors measured on other teachers (another recipe, dataset or
    validation split) fail.
    """
    return [float(e["accuracy"]) for e in prior_entries(path, teachers)]


def prior_entries(path: str | Path, teachers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The prior file's entries for ``teachers``, in their order (:func:`load_prior_file`)."""
    data = read_json_file(path, what=f"cvdd: prior file '{path}'", error=UserError,
                          missing=f"cvdd: prior file '{path}' does not exist")
    if not isinstance(data, dict) or data.get("format") != PRIOR_FILE_FORMAT:
        raise UserError(f"cvdd: '{path}' is not a prior file (format must be '{PRIOR_FILE_FORMAT}')")
    by_key = {str(e.get("key")): e for e in data.get("priors") or []}
    missing = [f"{t['recipe']} ({str(t['key'])[:12]})" for t in teachers if t["key"] not in by_key]
    if missing:
        known = ", ".join(f"{e.get('recipe')} ({str(e.get('key'))[:12]})" for e in by_key.values()) or "none"
        raise UserError(f"cvdd: prior file '{path}' has no prior for teacher(s) {', '.join(missing)}; it holds "
                        f"priors for: {known} (priors are measured per teacher: other teachers need their own)")
    return [by_key[t["key"]] for t in teachers]


def write_prior_file(path: str | Path, entries: list[dict[str, Any]]) -> Path:
    """Write a prior file (atomically) from entries ``{"recipe", "key", "accuracy", "source"}``, one per teacher
    (:mod:`dd_bench.pipeline.cvdd_priors` writes one from the SRe2L++ sets' validation accuracies)."""
    from dd_bench.io import atomic_write_json

    for e in entries:
        if not {"recipe", "key", "accuracy"} <= set(e):
            raise UserError(f"cvdd: a prior entry needs recipe, key and accuracy; got {sorted(e)}")
    atomic_write_json(Path(path), {"format": PRIOR_FILE_FORMAT, "priors": entries})
    return Path(path)
