"""Typed Hydra schemas: one dataclass per config group, registered in Hydra's ConfigStore.

Each option file names its schema first in its defaults list (``- /schema/method/dm@_here_``), so Hydra
validates types and struct mode rejects unknown keys before any work is done. Method schemas are generated
from each registered method's ``Config`` dataclass, so the YAML, the schema and the code cannot drift.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from dd_bench.eval.mtt import Augment

TASKS = ("demo", "distill", "evaluate", "run", "relabel", "leaderboard", "export", "import", "report")
TASK_CONFIGS = {"demo": "config", **{t: t for t in TASKS if t != "demo"}}  # conf/<name>.yaml per task


class WandbMode(enum.StrEnum):
    online = "online"
    offline = "offline"  # upload later with `wandb sync`
    disabled = "disabled"


class FullDataRow(enum.StrEnum):
    recorded = "recorded"  # the recorded reference shipped in baselines/references/ (with its provenance)
    compute = "compute"  # train on the whole training set now (about 50 s per model on 2 CPU cores)
    none = "none"


@dataclass
class DatasetSchema:
    name: str = MISSING
    root: str | None = None  # torchvision layout or a train/ + test/ ImageFolder tree, detected automatically
    download: bool = False  # torchvision download into root (never in tests)
    zca: bool = False  # ZCA-whiten (kornia ZCAWhitening eps=0.1, fitted on the training set)
    cache_dir: str | None = None  # decoded-tensor cache; default $DD_BENCH_CACHE or ~/.cache/dd_bench
    image_size: int | None = None  # resize + centre-crop ImageFolder images to this many pixels


@dataclass
class EvalSchema:
    name: str = MISSING  # a registered protocol: mtt, quick, mtt-datm
    batched: bool | None = None  # None: seeds batched with vmap on CUDA (when the model allows), one by one on CPU
    # Setting any of these makes an unranked "<name>+custom" protocol (recorded as such, never ranked).
    epochs: int | None = None  # last pass index (epochs + 1 passes)
    batch_size: int | None = None
    lr: float | None = None  # lr when the set has no learned lr
    use_learned_lr: bool | None = None
    augment: Augment | None = None  # dsa | dsa_fyi | none


@dataclass
class LoggerSchema:
    name: str = "none"  # none | wandb
    project: str | None = None
    entity: str | None = None
    mode: WandbMode = WandbMode.offline


@dataclass
class DemoSchema:
    dataset: str = "digits"
    ipcs: list[int] = field(default_factory=lambda: [1])  # IPC 10 on digits is near the ceiling: demo.ipcs=[1,10]
    models: list[str] = field(default_factory=lambda: ["convnet", "mlp"])
    seeds: int = 3
    protocol: str = "quick"
    # Methods of the kd family (SRe2L, RDED, ...) are scored under their own protocol, beside a random subset with
    # hard labels and one with the same teacher labels.
    kd_protocol: str = "kd-quick"
    kd_models: list[str] = field(default_factory=lambda: ["convnet"])
    methods: list[str] | None = None  # None: every registered method with a preset for demo.dataset
    references: list[str] = field(default_factory=lambda: ["random_subset"])
    full_data: FullDataRow = FullDataRow.recorded  # the full-data ceiling row: recorded | compute | none
    full_data_seeds: int = 1  # with full_data=compute: it trains on every image, so one seed by default


@dataclass
class DDBenchSchema:
    task: str = "demo"
    dataset: Any = MISSING
    method: Any = MISSING
    eval: Any = MISSING
    logger: Any = MISSING
    experiment: str | None = None  # set by experiment/*.yaml: the paper preset's name, recorded in the record
    preset: str | None = None  # set by the applied conf/preset/<method>/<dataset>.yaml (preset=none: none)
    verified: bool | None = None  # experiment/*.yaml: are its hyper-parameters and published number verified?
    published: str | None = None  # experiment/*.yaml: the method's own published number, e.g. "46.3 +- 0.8"
    ipc: int = 1  # images per class
    seed: int = 0  # distillation seed
    out: str | None = None  # synthetic set directory (default: <results>/synsets/<name>-<set hash>)
    synset: str | None = None  # evaluate: the synthetic set directory
    models: list[str] = field(default_factory=lambda: ["convnet"])
    # What the student learns from under a kd protocol: auto (the set's own: hard, learned, static, teacher or fkd;
    # meta.json's labels section) or any registered label source (dd_bench/labels/).
    label_source: str = "auto"
    # evaluate / run: score the same images once per label source (e.g. [fkd,teacher,projector,hard]), one record
    # each; replaces label_source when set.
    label_sources: list[str] | None = None
    # evaluate / run: DD-Ranking's robust scores for the set's records (lrs, ars; dd_bench/pipeline/robust.py): extra
    # evaluations under the identical recipe (hard labels, the full-data reference, no augmentation), as fractions.
    scores: list[str] = field(default_factory=list)
    seeds: int = 5  # number of evaluation networks; seed i = network i
    results: str = "runs"  # records, synsets, leaderboards; ignored by git
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    progress: bool | None = None  # None: bars only when stderr is a terminal (tasks.run resolves it)
    # Reference rows scored beside a method under the same protocol (cached on disk): random_subset (same size as
    # the set, seed i = subset i) and/or full_data (the whole training set: under mtt, 1001 passes over it).
    references: list[str] = field(default_factory=lambda: ["random_subset"])
    rerun: bool = False  # distil and evaluate again even when the set and records of this config exist
    # Hold out a seeded, stratified fraction of the training set from distillation (recorded in the set's
    # provenance); selection that uses it (best checkpoint, lr search) is opt-in per method. Never the test set.
    validation: float | None = None
    # How the distilled set stores its images (dd_bench/synset/image_store.py, docs/storage.md): native (as the method
    # makes them: float32 model space, uint8 for coresets; the default, left out of the set hash) | uint8 | jpeg (PIL at
    # jpeg_quality, evaluated on the decoded pixels, charged the JPEG bytes). Checked by the task before any work.
    image_store: str = "native"
    jpeg_quality: int = 75  # with image_store=jpeg; 75: PIL's default, what the official decoupled scripts save at
    demo: DemoSchema = field(default_factory=DemoSchema)
    # export / import (dd_bench/exchange): the format (export: imagefolder | npz | pt | hf; import: mtt | datm | dc |
    # imagefolder | npz), the file or directory to import, the declared space of imported images (normalized |
    # zca | pixels | uint8; dd-bench's own exports carry theirs), which [images, labels] pair of a DC res_*.pt, and
    # the name the imported set is shown under (default imported_<format>).
    format: str | None = None
    path: str | None = None
    space: str | None = None
    entry: int = -1
    name: str | None = None
    # import: a names file naming the class of each label, one per line in label order; mapped onto the dataset's
    # class order (npz/pt labels, an ImageFolder's index-named folders; a mismatch fails naming both orders).
    classes: str | None = None
    # leaderboard: rebuild it from the record files of a wandb project's runs (ENTITY/PROJECT, or a directory of
    # offline runs) instead of results=.
    wandb_project: str | None = None
    # export: make stored fkd labels for this kd protocol and export them instead of the teachers' weights.
    materialise: str | None = None


def method_schema(name: str, config_cls: type) -> type:
    """A dataclass with ``name`` plus every field of a method's Config, with resolved (non-string) types."""
    hints = typing.get_type_hints(config_cls)
    fields = [("name", str, field(default=name))]
    for f in dataclasses.fields(config_cls):
        default = field(default=f.default) if f.default is not dataclasses.MISSING else \
            field(default_factory=f.default_factory)  # type: ignore[arg-type]
        fields.append((f.name, hints[f.name], default))
    return dataclasses.make_dataclass(f"{name}_schema", fields)


def _registry_list(name: str) -> str:
    """``${dd_bench.list:methods}`` in conf/hydra/help: the registered names of any registry in the registry of
    registries (dd_bench/registry.py: REGISTRIES), so the help text cannot go stale."""
    from dd_bench.registry import registry_names

    return ", ".join(registry_names(name))


def _slurm_gpus(device: str) -> int | None:
    """GPUs per SLURM job (conf/hydra/launcher/submitit_*.yaml): none asked (null) for device=cpu, else one chip."""
    return None if str(device) == "cpu" else 1


def _slurm_cpus(device: str) -> int:
    """CPU cores per SLURM job: data lives on the GPU, so a GPU job needs few; a CPU job computes on them."""
    return 16 if str(device) == "cpu" else 8


def register_schemas() -> None:
    """Register every schema with Hydra's ConfigStore and the help text's resolver (idempotent)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from dd_bench.methods import METHODS

    OmegaConf.register_new_resolver("dd_bench.list", _registry_list, replace=True)
    OmegaConf.register_new_resolver("dd_bench.slurm_gpus", _slurm_gpus, replace=True)
    OmegaConf.register_new_resolver("dd_bench.slurm_cpus", _slurm_cpus, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="dd_bench_schema", node=DDBenchSchema)
    cs.store(group="schema/dataset", name="base", node=DatasetSchema)
    cs.store(group="schema/eval", name="base", node=EvalSchema)
    cs.store(group="schema/logger", name="base", node=LoggerSchema)
    for name in METHODS.list():
        cs.store(group="schema/method", name=name, node=method_schema(name, METHODS.get(name).Config))
