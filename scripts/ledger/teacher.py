"""What the decoupled pairs of the fidelity ledger share (RDED and SRe2L, CIFAR-10): one data tree, one conv3 teacher
trained once and loaded by every pipeline, and the step that gives an imported official set that teacher's labels.

    (run through scripts/ledger/pair.py: rded-cifar10-ipc10, sre2l-cifar10-ipc10)

The family folder ``<work>/<family>/`` (stamped with the family's budget: :func:`harness.stamped_dir`) holds two steps,
run once by whichever pair comes first:

* ``subset``: data.py's class-balanced training subset (``per_class`` images a class, seeded) and the full test set as
  one ImageFolder tree (``data/train``, ``data/test``). It is RDED's candidate pool on both sides (``per_class`` =
  ``mipc``: each side draws mipc of exactly those images per class) and every pair's test set.
* ``teacher``: the conv3 (ConvNet width 128, depth 3, batch norm, avg pooling: RDED's ``--arch-name conv3``,
  dd-bench's ``convnet_bn``) trained by dd-bench's teacher trainer (:func:`dd_bench.teachers.get_teacher`) with
  SRe2L's squeeze recipe (``sre2l_cifar``: SGD 0.1 / 0.9 / 5e-4, cosine, batch 128, RandomCrop(32, 4) + flip; the only
  CIFAR teacher recipe either repository ships, ``squeeze_cifar.py``) at reduced epochs, on the full training set
  (the smoke family: on the tree). Written three times, one tensor set:

  - ``conv3.safetensors``: dd-bench's keys, for ``method.teacher_weights`` (and so for the kd evaluator's teacher);
  - ``cifar10_conv3.pth``: ``{"model": state}`` in RDED's ConvNet keys (``layers.conv.<d>``, ``layers.norm.<d>``,
    ``classifier``), as RDED's ``load_model`` reads ``./data/pretrain_models/{dataset}_{model}.pth``
    (synthesize/utils.py:237-240), with the first convolution folded from dd-bench's CIFAR normalisation to the
    ImageNet constants RDED normalises CIFAR with (synthesize/utils.py:77, validation/main.py:111-113): the same
    function of the pixels (exact away from the 1-pixel zero-padded border; :func:`fold_input_normalisation`);
  - ``sre2l_conv3.pth``: ``{"state_dict": state}`` with DataParallel's ``module.`` prefix, as recover_cifar.py:184-185
    and relabel_cifar.py:91-92 read it (SRe2L normalises with dd-bench's constants: no fold).

  ``teacher.json`` records the recipe, the wall time and the teacher's test accuracy in each space (information only;
  nothing is selected by it), so the entry shows what the fold keeps.
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
    SUBSET_STEP,
    ddbench_command,
    git_sha_clean,
    only_record,
    run_step,
    stamped_dir,
    step_args,
    subset_step,
)

SCRIPT = Path(__file__).resolve()
# dd-bench's recipe naming the conv3 architecture (method.teacher); the weights always come from the file.
ARCH_RECIPE = "rded_observer_cifar_conv3"
STUDENT = "convnet_bn (RDED's conv3: ConvNet width 128, depth 3, batch norm, avg pooling)"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # RDED's normalize (synthesize/utils.py:77)
FILES = {"ddbench": "conv3.safetensors", "rded": "cifar10_conv3.pth", "sre2l": "sre2l_conv3.pth"}


@dataclasses.dataclass(frozen=True)
class Family:
    """The data tree and the teacher the decoupled pairs of one budget share."""

    name: str
    per_class: int  # training images a class in the tree (RDED's candidate pool: mipc)
    teacher_epochs: int  # squeeze epochs (sre2l_cifar: 200)
    teacher_full_train: bool = True  # the teacher trains on the full training set; False: on the tree (smoke)
    subset_seed: int = 0
    test_per_class: int | None = None  # None: the full test set (RDED's validation reads 1000 a class: always)

    def budget(self) -> dict[str, Any]:
        return {"subset_per_class": self.per_class, "teacher": "conv3", "teacher_epochs": self.teacher_epochs,
                "teacher_train": "full training set" if self.teacher_full_train else "the subset"}


# About 33 min on 2 idle cores: 10 epochs of 391 steps of 128 images (0.43 s a step: 0.85 s per 256) and three test
# passes; the tree (3,000 + 10,000 PNGs) about 1 min.
FAMILY = Family("decoupled-cifar10", per_class=300, teacher_epochs=10)
SMOKE_FAMILY = Family("decoupled-cifar10-smoke", per_class=20, teacher_epochs=1, teacher_full_train=False)


def teacher_recipe(epochs: int) -> Any:
    """``sre2l_cifar`` (SRe2L's squeeze_cifar.py recipe) on the conv3 of ``ARCH_RECIPE``, ``epochs`` long."""
    from dd_bench.teachers import get_recipe

    arch = get_recipe(ARCH_RECIPE)
    return dataclasses.replace(get_recipe("sre2l_cifar"), model=arch.model, model_kwargs=dict(arch.model_kwargs),
                               epochs=epochs)


def _block(key: str) -> tuple[str, str, str]:
    """dd-bench's convnet_bn key -> (kind, depth index, parameter) or a SystemExit naming the key."""
    parts = key.split(".")
    if parts[0] == "classifier" and len(parts) == 2:
        return "classifier", "", parts[1]
    if parts[0] == "features" and len(parts) == 3 and parts[1].isdigit() and int(parts[1]) % 4 in (0, 1):
        return ("conv", "norm")[int(parts[1]) % 4], str(int(parts[1]) // 4), parts[2]
    raise SystemExit(f"error: {key} is no parameter of dd-bench's convnet_bn (conv, norm, ReLU, pool blocks)")


def to_rded_state(state: dict[str, Any]) -> dict[str, Any]:
    """dd-bench's convnet_bn state dict in RDED's ConvNet names: ``features.<4d>`` -> ``layers.conv.<d>``,
    ``features.<4d+1>`` -> ``layers.norm.<d>`` (ReLU and pool hold nothing), ``classifier`` unchanged."""
    out = {}
    for key, value in state.items():
        kind, d, param = _block(key)
        out[f"classifier.{param}" if kind == "classifier" else f"layers.{kind}.{d}.{param}"] = value
    return out


def from_rded_state(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`to_rded_state`."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "classifier":
            out[key] = value
        elif parts[:2] in (["layers", "conv"], ["layers", "norm"]) and len(parts) == 4:
            out[f"features.{4 * int(parts[2]) + (parts[1] == 'norm')}.{parts[3]}"] = value
        else:
            raise SystemExit(f"error: {key} is no parameter of RDED's ConvNet")
    return out


def to_sre2l_state(state: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``nn.DataParallel(model).state_dict()``, which SRe2L's scripts load into (``module.`` prefix)."""
    return {f"module.{key}": value for key, value in state.items()}


def fold_input_normalisation(state: dict[str, Any], *, mean_from: tuple[float, ...], std_from: tuple[float, ...],
                             mean_to: tuple[float, ...], std_to: tuple[float, ...],
                             first: str = "features.0") -> dict[str, Any]:
    """``state`` with its first convolution rewritten so that on ``x_to = (p - mean_to) / std_to`` it computes what
    ``state`` computes on ``x_from = (p - mean_from) / std_from`` (p: pixels in [0, 1]). With
    ``x_from = x_to * a + c`` per channel (``a = std_to / std_from``, ``c = (mean_to - mean_from) / std_from``):
    ``W' = W * a`` and ``b' = b + sum(W * c)``. Exact wherever the kernel sees no zero padding (the padding is 0 in
    either space, i.e. another pixel value), so the two differ only on the outer ring of the first feature map."""
    import torch

    w, b = state[f"{first}.weight"].double(), state[f"{first}.bias"].double()
    a = torch.tensor(std_to, dtype=torch.float64) / torch.tensor(std_from, dtype=torch.float64)
    c = (torch.tensor(mean_to, dtype=torch.float64) - torch.tensor(mean_from, dtype=torch.float64)) \
        / torch.tensor(std_from, dtype=torch.float64)
    out = dict(state)
    out[f"{first}.weight"] = (w * a.view(1, -1, 1, 1)).to(state[f"{first}.weight"].dtype)
    out[f"{first}.bias"] = (b + (w * c.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))).to(state[f"{first}.bias"].dtype)
    return out


def train_teacher(*, root: Path, tree: Path, epochs: int, out: Path) -> dict[str, Any]:
    """The ``teacher`` step: train (or load from ``out/cache``), write the three files and ``teacher.json``."""
    import torch
    from safetensors.torch import save_file

    from dd_bench.data import load_dataset
    from dd_bench.data.catalog import CIFAR_MEAN, CIFAR_STD
    from dd_bench.io.weights_file import CLASS_NAMES_KEY
    from dd_bench.models import create_model
    from dd_bench.teachers import accuracy, get_teacher

    recipe = teacher_recipe(epochs)
    real = load_dataset("cifar10", root=root, progress=False)
    teacher = get_teacher(real, recipe, cache_dir=out / "cache", progress=False)
    state = {k: v.detach().cpu().contiguous() for k, v in teacher.module.state_dict().items()}
    save_file(state, str(out / FILES["ddbench"]), metadata={CLASS_NAMES_KEY: json.dumps(list(real.class_names))})
    folded = fold_input_normalisation(state, mean_from=CIFAR_MEAN, std_from=CIFAR_STD, mean_to=IMAGENET_MEAN,
                                      std_to=IMAGENET_STD)
    torch.save({"model": to_rded_state(folded)}, out / FILES["rded"])
    torch.save({"state_dict": to_sre2l_state(state)}, out / FILES["sre2l"])

    test = load_dataset("cifar10", root=tree, progress=False)  # the pairs' test split
    x, y = test.test_images, test.test_labels
    as_rded = create_model(recipe.model, num_classes=10, in_channels=3, image_size=(32, 32),
                           **dict(recipe.model_kwargs))
    as_rded.load_state_dict(from_rded_state(torch.load(out / FILES["rded"], weights_only=True)["model"]))
    as_rded.eval()

    @torch.no_grad()
    def logits(net: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
        m, s = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
        return torch.cat([net((x[i:i + 500].float() / 255 - m) / s) for i in range(0, len(x), 500)])

    ours = logits(teacher.module, CIFAR_MEAN, CIFAR_STD)
    folded_out, unfolded_out = logits(as_rded, IMAGENET_MEAN, IMAGENET_STD), logits(teacher.module, IMAGENET_MEAN,
                                                                                     IMAGENET_STD)
    pct = lambda z: 100.0 * float((z.argmax(1) == y).float().mean())  # noqa: E731
    info = {"recipe": recipe.to_dict(), "derived_from": f"sre2l_cifar with model {recipe.model} "
            f"{dict(recipe.model_kwargs)} (the architecture of {ARCH_RECIPE}) and epochs 200 -> {epochs}",
            "key": teacher.key, "train_images": len(real.train_labels), "train_root": str(root),
            "train_seconds": teacher.extra.get("train_seconds"), "files": {k: str(out / f) for k, f in FILES.items()},
            "test_images": len(y), "test_accuracy": {
                "ddbench_space": accuracy(teacher.module, x, y, test),
                "rded_space_folded": pct(folded_out), "rded_space_unfolded": pct(unfolded_out)},
            "fold": {"prediction_agreement": 100.0 * float((folded_out.argmax(1) == ours.argmax(1)).float().mean()),
                     "max_abs_logit_difference": float((folded_out - ours).abs().max()),
                     "note": "cifar10_conv3.pth holds the folded weights; rded_space_unfolded is what RDED's code "
                             "would see from the unconverted teacher"}}
    (out / "teacher.json").write_text(json.dumps(info, indent=1))
    return info


def prepare_family(family: Family, *, data: Path, work: Path) -> dict[str, Any]:
    """Steps ``subset`` and ``teacher`` (shared by the decoupled pairs), their outputs and records."""
    folder = stamped_dir(work / family.name, dataclasses.asdict(family))
    tree, out = folder / "data", folder / "teacher"
    cmd = [sys.executable, str(SCRIPT), "_subset", "--root", str(data), "--per-class", str(family.per_class),
           "--seed", str(family.subset_seed), "--out", str(tree)]
    cmd += [] if family.test_per_class is None else ["--test-per-class", str(family.test_per_class)]
    run_step(folder, "subset", cmd, cwd=folder)
    out.mkdir(parents=True, exist_ok=True)
    step = run_step(folder, "teacher", [sys.executable, str(SCRIPT), "_teacher", "--root",
                                        str(data if family.teacher_full_train else tree), "--tree", str(tree),
                                        "--epochs", str(family.teacher_epochs), "--out", str(out)], cwd=folder)
    info = json.loads((out / "teacher.json").read_text())
    return {"folder": folder, "tree": tree, "subset": json.loads((tree / "subset.json").read_text()),
            "files": {k: out / f for k, f in FILES.items()},
            "teacher": {**info, "command": step["command"], "wall_seconds": step["wall_seconds"]}}


def data_record(fam: dict[str, Any]) -> dict[str, Any]:
    sub = fam["subset"]
    return {"train_subset": {k: sub[k] for k in ("per_class", "seed", "num_images", "indices_sha256")},
            "test": sub["test"], "test_images": sub["test_images"], "source_fingerprint": sub["data_fingerprint"],
            "teacher_train_images": fam["teacher"]["train_images"]}


def teacher_record(fam: dict[str, Any]) -> dict[str, Any]:
    t = fam["teacher"]
    return {k: t[k] for k in ("recipe", "derived_from", "key", "train_images", "train_seconds", "test_accuracy",
                              "fold", "command", "wall_seconds")} | {"architecture_recipe": ARCH_RECIPE}


def attach_teacher(imported: Path, like: Path, out: Path) -> dict[str, Any]:
    """The ``attach-labels`` step: the imported official set written again with the labels section of dd-bench's set
    (``like``: the same teacher file and BN mode), so ``dd-bench evaluate`` distils from the same online teacher.
    ``dd-bench import`` writes hard labels only; the images, their storage and the origin are kept."""
    from dd_bench.io import replace_dir_atomically
    from dd_bench.synset import load_synset, save_synset
    from dd_bench.synset.labels_section import LabelsSection

    theirs = load_synset(imported)
    section = LabelsSection.from_meta(json.loads((like / "meta.json").read_text()))
    if not section.teachers:
        raise SystemExit(f"error: {like} names no teacher in its labels section")
    theirs.label_section = LabelsSection(source="teacher", teachers=section.teachers, weights=section.weights,
                                         bn_train=section.bn_train, bn_split=section.bn_split)
    theirs.recommended_protocol = "kd"
    theirs.provenance = {**theirs.provenance, "ledger_labels": f"labels section of {like} (attach-labels step)"}
    replace_dir_atomically(out, lambda tmp: save_synset(theirs, tmp))
    return {"teachers": section.teachers, "bn_train": section.bn_train}


def ddbench_side(folder: Path, *, distill: list[str], score: list[str]) -> dict[str, Any]:
    """dd-bench's side as a user runs it in two commands: ``dd-bench distill`` (timed whole, as the official step is:
    interpreter start-up, imports and data loading on both sides), then ``dd-bench evaluate`` of its set with the
    ``score`` overrides, the same ones that score the official set. Returns the commands, steps and the record."""
    results = folder / "ddbench"
    distill_cmd = ddbench_command(*distill, "progress=false", f"results={results}", task="distill")
    step_distill = run_step(folder, "ddbench-distill", distill_cmd, cwd=folder)
    sets = [p.parent for p in (results / "synsets").glob("*/meta.json")]
    if len(sets) != 1:
        raise SystemExit(f"error: expected one set under {results / 'synsets'}; found {len(sets)}")
    score_cmd = ddbench_command(f"synset={sets[0]}", *score, f"results={results}", task="evaluate")
    step_score = run_step(folder, "ddbench-score", score_cmd, cwd=folder)
    return {"distill_command": distill_cmd, "score_command": score_cmd, "distill_step": step_distill,
            "score_step": step_score, "record": only_record(results), "synset": sets[0]}


def ddbench_entry(ours: Any, *, commands: dict[str, list[str]], steps: dict[str, dict[str, Any]], experiment: str,
                  bn: str) -> dict[str, Any]:
    """The entry's ``ddbench`` section of a decoupled pair (``bn``: the teacher's BN mode at labelling)."""
    return {"command": shlex.join(commands["ours"]), "score_command": shlex.join(commands["ours_score"]),
            "git_sha": git_sha_clean(), "record_git_sha": ours.git_sha,
            "wall_seconds": steps["ours"]["wall_seconds"], "distill_seconds": ours.distill_seconds,
            "wall_seconds_total": steps["ours"]["wall_seconds"] + steps["ours_score"]["wall_seconds"],
            "set_hash": ours.set_hash, "record_hash": ours.record_hash, "experiment": experiment,
            "notes": [f"method.teacher names the conv3 architecture (dd-bench's recipe {ARCH_RECIPE}); the weights "
                      "are the family's file, method.teacher_weights",
                      "dd-bench import writes hard labels only: attach-labels gives the imported official set the "
                      f"labels section of dd-bench's set (the same teacher file, BN in {bn} mode) through "
                      "dd_bench.synset, which the command line cannot do"]}


def class_names_file(tree: Path, out: Path) -> Path:
    """A names file (``classes=``): the tree's ``<index>_<class>`` folder names in index order, which are the class
    names dd-bench gives a tree whose folders are not a known dataset's class names."""
    names = [p.name for p in sorted((tree / "train").iterdir()) if p.is_dir()]
    out.write_text("".join(n + "\n" for n in names))
    return out


def main_step(argv: list[str]) -> None:
    """The steps that are our code, each a subprocess of a pair (resumable and logged like the others)."""
    a = step_args(argv, prog="teacher.py", steps={"_subset": SUBSET_STEP, "_teacher": ("--root", "--tree", "--epochs",
                                                                                    "--out"),
                                                  "_attach": ("--imported", "--like", "--out")})
    if argv[0] == "_subset":
        subset_step(a)
    elif argv[0] == "_teacher":
        print(json.dumps(train_teacher(root=Path(a.root), tree=Path(a.tree), epochs=int(a.epochs), out=Path(a.out)),
                         indent=1))
    else:
        print(json.dumps(attach_teacher(Path(a.imported), Path(a.like), Path(a.out))))


if __name__ == "__main__":
    if len(sys.argv) < 2 or not sys.argv[1].startswith("_"):
        raise SystemExit("run the decoupled pairs with scripts/ledger/pair.py (its --list names them)")
    main_step(sys.argv[1:])
