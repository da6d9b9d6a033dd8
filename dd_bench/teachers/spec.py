"""How a method asks for a teacher, and how a set names the teachers its labels need.

``resolve_teacher(real, recipe=NAME, weights=PATH | None)`` is the one entry point methods use: a suite-trained
teacher from the cache (trained now if missing), or a local weights file in the recipe's architecture.
``teacher_spec(teacher)`` is the JSON a set stores in its labels section (recipe, key, architecture, weights path,
validation accuracy, parameter bytes); ``teacher_from_spec`` rebuilds the same teacher at evaluation time and fails
clearly when this data would give another one (the key covers the training data, so a different validation split
or dataset root is caught).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dd_bench.data import RealData
from dd_bench.errors import UserError
from dd_bench.teachers.recipe import get_recipe
from dd_bench.teachers.store import Teacher, get_teacher, load_teacher_weights


def resolve_teacher(real: RealData, *, recipe: str, weights: str | Path | None = None,
                    cache_dir: str | Path | None = None, progress: bool = True) -> Teacher:
    spec = get_recipe(recipe)
    if weights is not None:
        teacher = load_teacher_weights(weights, model=spec.model, real=real, model_kwargs=dict(spec.model_kwargs))
        teacher.extra["recipe_name"] = recipe
        return teacher
    teacher = get_teacher(real, spec, cache_dir=cache_dir, progress=progress)
    teacher.extra["recipe_name"] = recipe
    return teacher


def check_teacher_pool(method: str, recipes: list[str], weights: list[str | None] | None) -> None:
    """A committee's options (CV-DD, INFER): at least one registered recipe, and one weights file per teacher
    when files are given; fails before any work, naming the problem."""
    from dd_bench.teachers.recipe import TEACHER_RECIPES

    if not recipes:
        raise UserError(f"{method}: teachers must name at least one teacher recipe")
    if weights is not None and len(weights) != len(recipes):
        raise UserError(f"{method}: teacher_weights needs one file per teacher ({len(recipes)}); got {len(weights)}")
    for name in recipes:
        TEACHER_RECIPES.get(name)  # an unknown recipe fails here, listing the registered ones


def resolve_teachers(real: RealData, *, recipes: list[str], weights: list[str | None] | None = None,
                     cache_dir: str | Path | None = None, progress: bool = True) -> list[Teacher]:
    """:func:`resolve_teacher` for each recipe of a committee (``weights``: one local file or None per recipe)."""
    files = weights or [None] * len(recipes)
    return [resolve_teacher(real, recipe=r, weights=w, cache_dir=cache_dir, progress=progress)
            for r, w in zip(recipes, files, strict=True)]


def teacher_spec(teacher: Teacher) -> dict[str, Any]:
    return {"recipe": teacher.extra.get("recipe_name"), "key": teacher.key, "model": teacher.model,
            "model_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in teacher.model_kwargs.items()},
            "source": teacher.source, "weights": teacher.extra.get("path"),
            "validation_accuracy": teacher.validation_accuracy, "bytes": teacher.parameter_bytes}


def teacher_from_spec(spec: dict[str, Any], real: RealData, *, cache_dir: str | Path | None = None,
                      progress: bool = True) -> Teacher:
    """The teacher a set names: from the cache by its key when it is there (a teacher trained without a
    validation split's images is found although ``real`` here is the whole training set), else trained on
    ``real``, which must then give the same key."""
    from dd_bench.io import KeyedStore
    from dd_bench.teachers.store import load_cached

    if spec.get("source", "trained") == "trained" and spec.get("key"):
        root = KeyedStore("teachers", cache_dir).path(spec["key"])
        if (root / "weights.safetensors").is_file():
            teacher = load_cached(root, real, get_recipe(spec["recipe"]), spec["key"])
            teacher.extra["recipe_name"] = spec["recipe"]
            return teacher
    teacher = resolve_teacher(real, recipe=spec["recipe"], weights=spec.get("weights"), cache_dir=cache_dir,
                              progress=progress)
    if spec.get("source", "trained") == "trained" and teacher.key != spec.get("key"):
        raise UserError(f"the set's labels need teacher '{spec['recipe']}' with key {str(spec.get('key'))[:12]}, "
                        f"but on this data the recipe gives key {teacher.key[:12]} (another dataset root, "
                        "validation split or dd-bench version); evaluate with the data the set was distilled from")
    return teacher
