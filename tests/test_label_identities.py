"""Label identities, labels sections and record hashes pinned on small digits sets: the values were computed before
label sources became one object per kind (dd-bench d386c73), so a record made then is found, not redone, now.

Each set is one shape of labels section a method writes: hard, learned soft logits, one teacher in train-mode BN
(SRe2L), a weighted committee with split BN (CV-DD), static logits (INFER), stored distances with their loss settings
(NRR-DD) and a projector (HeLlO). Every registered label source name is asked for every set, as ``label_identity``
does not refuse a source a set cannot use.
"""

from __future__ import annotations

import pytest
import torch

from dd_bench.eval import get_protocol
from dd_bench.labels import LABEL_SOURCES, label_identity, resolve_labels, same_label_kinds
from dd_bench.labels.teacher import committee_identity
from dd_bench.methods import METHODS, create_method
from dd_bench.pipeline.evaluate import evaluation_hash
from dd_bench.synset import load_synset, read_meta, save_synset
from dd_bench.synset.labels_section import LabelsSection

T32, T64 = "649177c91d44b49104acd075", "6409b93a5e3a3e56dd85ca9e"  # the digits ConvNet-BN teachers' keys
KD = "kd-quick-v2-99cde55d"  # fkd_key(kd-quick)

SETS = {  # name -> (method, options beside its TEST_OPTIONS)
    "dm": ("dm", {}),
    "learned": ("dm", {}),  # given soft logits below
    "sre2l": ("sre2l", {"teacher_bn_train": True}),
    "cvdd": ("cvdd", {"teacher_bn_train": True, "bn_split": 2}),
    "infer": ("infer", {}),
    "nrrdd_dbr": ("nrrdd", {"labels": "dbr", "alpha_dbr": 0.25, "dbr_norm": "squared"}),
    "hello": ("hello", {}),
}

# The same for every set (they depend on the protocol only).
COMMON = {"hard": "hard", "static": "static", "fkd": f"fkd:{KD}", "fkd_int8": f"fkd_int8:{KD}",
          "fkd_top5": f"fkd_top5_smooth:{KD}", "fkd_top5_renorm": f"fkd_top5_renorm:{KD}",
          "fkd_top10": f"fkd_top10_smooth:{KD}", "fkd_top1_renorm": f"fkd_top1_renorm:{KD}"}
NO_PROJECTOR, DEFAULT_DISTANCE = "projector:None:randomNone:rNone", f"distance:dbr-{KD}:a1:l1"
PINNED = {
    "dm": {"auto": "hard", "learned": "hard", "teacher": "teacher:"},
    "learned": {"auto": "soft_logits", "learned": "soft_logits", "teacher": "teacher:"},
    "sre2l": {"auto": f"teacher:{T32}:bn_train", "learned": "hard", "teacher": f"teacher:{T32}:bn_train"},
    "cvdd": {"auto": f"teacher:{T32},{T64}:bn_train:split2:w0.5,0.5", "learned": "hard",
             "teacher": f"teacher:{T32},{T64}:bn_train:split2:w0.5,0.5"},
    "infer": {"auto": "static", "learned": "soft_logits", "teacher": f"teacher:{T32},{T64}"},
    "nrrdd_dbr": {"auto": f"distance:dbr-{KD}:a0.25:squared", "learned": "hard", "teacher": f"teacher:{T32}",
                  "distance": f"distance:dbr-{KD}:a0.25:squared"},
    "hello": {"auto": "projector:suite:fafa74b978dded73:r4", "learned": "hard", "teacher": f"teacher:{T32}",
              "projector": "projector:suite:fafa74b978dded73:r4"},
}
# meta.json's labels section: its keys, and the values that are not teacher specs, shapes or stored labels.
SECTIONS = {
    "dm": {"source": "hard"},
    "learned": {"source": "learned"},
    "sre2l": {"source": "teacher", "weights": None, "bn_train": True},
    "cvdd": {"source": "teacher", "weights": [0.5, 0.5], "bn_train": True, "bn_split": 2},
    "infer": {"source": "static", "static": "mean logits of the teachers on each clean instance"},
    "nrrdd_dbr": {"source": "distance", "weights": None, "bn_train": False, "reconstruction": True,
                  "distance": {"alpha": 0.25, "norm": "squared"}},
    "hello": {"source": "projector", "weights": None, "bn_train": False, "reconstruction": True},
}
TEACHERS = {"dm": [], "learned": [], "sre2l": [T32], "cvdd": [T32, T64], "infer": [T32, T64], "nrrdd_dbr": [T32],
            "hello": [T32]}
# evaluation_hash(...)[:16] of each set under kd-quick, convnet, seeds [0, 1], its own source (set hash "pinned-<set>").
RECORD_HASHES = {"dm": "5116fdbe325336e4", "learned": "a75b59a06ea45d0b", "sre2l": "3fab37b382b0d903",
                 "cvdd": "868898244f909295", "infer": "8549615c799cb439", "nrrdd_dbr": "9883ea0babd90600",
                 "hello": "6c245ec4a5cf7563"}


@pytest.fixture(scope="module")
def pinned_sets(digits, tmp_path_factory):
    root = tmp_path_factory.mktemp("pinned")
    out = {}
    for name, (method, options) in SETS.items():
        synset = create_method(method, **{**METHODS.get(method).TEST_OPTIONS, **options}).distill(
            digits.without_test(), ipc=2, seed=0, progress=False)
        if name == "learned":
            synset.soft_labels = torch.randn(len(synset.labels), 10, generator=torch.Generator().manual_seed(0))
            synset.label_kind, synset.label_source = "soft_logits", None
            synset.__post_init__()
        out[name] = save_synset(synset, root / name)
    return out


def _names() -> list[str]:
    """Every registered source, with members standing for the families (fkd_top<k>, fkd_top<k>_renorm)."""
    return ["auto", *(n for n in LABEL_SOURCES.list() if "<" not in n), "fkd_top5", "fkd_top5_renorm", "fkd_top10",
            "fkd_top1_renorm"]


def test_every_label_source_keeps_its_identity(pinned_sets):
    kd = get_protocol("kd-quick")
    for name, directory in pinned_sets.items():
        meta = read_meta(directory)
        expected = {**COMMON, "distance": DEFAULT_DISTANCE, "projector": NO_PROJECTOR, **PINNED[name]}
        assert {n: label_identity(meta, n, kd) for n in _names()} == expected, name
    # The stored labels' key follows the protocol, whichever family it is of.
    meta = read_meta(pinned_sets["dm"])
    assert label_identity(meta, "fkd", get_protocol("quick")) == "fkd:quick-v1-eb32e62d"
    assert label_identity(meta, "distance", get_protocol("quick")) == "distance:dbr-quick-v1-eb32e62d:a1:l1"


def test_record_hashes_are_unchanged(pinned_sets):
    kd = get_protocol("kd-quick")
    for name, directory in pinned_sets.items():
        meta = {**read_meta(directory), "set_hash": f"pinned-{name}"}
        assert evaluation_hash(meta=meta, protocol=kd, model="convnet", seeds=[0, 1])[:16] == RECORD_HASHES[name]


def test_labels_sections_are_written_and_read_back_as_before(pinned_sets):
    for name, directory in pinned_sets.items():
        section = read_meta(directory)["labels"]
        derived = {"shape", "dtype", "stored_bytes", "fkd"} | ({"teachers"} if TEACHERS[name] else set())
        if name == "hello":  # HeLlO's own part, whose backbone file lives in the cache
            derived.add("projector")
            assert sorted(section["projector"]) == ["alpha", "backbone", "backbone_identity", "head_init", "layers",
                                                    "rank", "reconstruction", "storage_dtype", "targets"]
        assert set(section) == set(SECTIONS[name]) | derived, name
        assert {k: section[k] for k in SECTIONS[name]} == SECTIONS[name] and section["fkd"] == {}
        assert [t["key"] for t in section.get("teachers") or []] == TEACHERS[name]
        loaded = load_synset(directory)
        assert loaded.labels_meta() == section  # a loaded set writes the section it was read from
        assert LabelsSection.from_dict(section).to_dict() == {k: v for k, v in section.items()
                                                              if k not in ("shape", "dtype", "stored_bytes")}
        assert loaded.label_info == {k: v for k, v in section.items()
                                     if k not in ("source", "shape", "dtype", "stored_bytes")}


def test_teacher_identities_as_loaded_and_for_reference_rows(pinned_sets, digits):
    kd = get_protocol("kd-quick")
    cvdd = load_synset(pinned_sets["cvdd"])
    assert resolve_labels("auto", synset=cvdd, real=digits, protocol=kd, progress=False).identity == \
        PINNED["cvdd"]["auto"]
    section = LabelsSection.from_meta(read_meta(pinned_sets["infer"]))
    assert committee_identity(section) == f"teacher:{T32},{T64}"  # the reference rows' "static:" + this
    assert same_label_kinds(section, ["auto", "teacher", "fkd_top5", "hard"]) == ("static", "teacher")
    assert same_label_kinds(LabelsSection.from_meta(read_meta(pinned_sets["hello"])), ["auto"]) == ("teacher",)
    assert same_label_kinds(LabelsSection.from_meta(read_meta(pinned_sets["dm"])), ["auto", "teacher"]) == ()
