"""Class maps travel with sets (issue 22, items 10 and 11): an import reads an ImageFolder's folder names as class
names (a tree in another class order is remapped, a foreign name refused), npz / pt imports read their labels
through a names file or their datasheet's class_names, a teacher file's class map reorders its outputs, and every
export names its data fingerprint and its datasheet README.md in every format."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dd_bench.data.class_map import folder_classes, map_onto
from dd_bench.errors import UserError
from dd_bench.exchange import export_synset, import_set
from dd_bench.exchange.export import DATASHEET_FILE, EXPORT_FORMATS
from dd_bench.synset import load_synset, read_meta

# The file's label j is digits class PERM[j] (a set written in another class order).
PERM = [3, 7, 0, 9, 1, 5, 2, 8, 4, 6]


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.fixture(scope="module")
def coreset(digits, tmp_path_factory):
    """A random uint8 coreset of digits (2 images per class) made by the workflow, so its provenance records the data
    fingerprint as every newly distilled set's does."""
    from dd_bench.pipeline.distill import distill_to_disk

    out = tmp_path_factory.mktemp("sets") / "random"
    synset, _, _ = distill_to_disk(method="random", method_kwargs={}, real=digits, ipc=2, seed=0, out=out,
                                   progress=False)
    return out


def test_map_onto_gives_the_permutation_or_one_line_naming_both_orders():
    classes = [str(c) for c in range(10)]
    assert map_onto([str(c) for c in PERM], classes=classes, dataset="digits", what="x") == PERM
    with pytest.raises(UserError) as err:
        map_onto(["dog", *classes[1:]], classes=classes, dataset="digits", what="the class map of f.txt")
    text = _one_line(err)
    assert "not classes of digits: 'dog'" in text and "missing: '0'" in text
    assert "its order [dog, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in text
    assert "digits's order [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in text
    with pytest.raises(UserError, match="named twice: '1'"):
        map_onto(["1", *classes[1:]], classes=classes, dataset="digits", what="x")
    many = [f"c{i}" for i in range(200)]  # Tiny-ImageNet-sized orders stay one readable line
    with pytest.raises(UserError, match=r"c19, \.\.\. \(200 in all\)\]"):
        map_onto(many[::-1][:-1] + ["x"], classes=many, dataset="tiny", what="x")


def test_folder_names_decide_the_class():
    classes = ["cat", "dog", "bird"]
    kw = {"classes": classes, "dataset": "pets", "where": "t"}
    assert folder_classes(["bird", "cat", "dog"], **kw) == [2, 0, 1]
    assert folder_classes(["000_dog", "001_bird", "002_cat"], **kw) == [1, 2, 0]  # the name, not the number
    assert folder_classes(["0", "1", "2"], **kw, class_map=["bird", "cat", "dog"]) == [2, 0, 1]
    with pytest.raises(UserError) as err:
        folder_classes(["000_cat", "001_dog", "002_cow"], **kw)
    text = _one_line(err)
    assert "folder '002_cow' names no class of pets" in text
    assert "its order [000_cat, 001_dog, 002_cow]" in text and "pets's order [cat, dog, bird]" in text
    with pytest.raises(UserError, match="folder '0' is an index, not a class name.*classes=FILE"):
        folder_classes(["0", "1", "2"], **kw)
    with pytest.raises(UserError, match="folders '000_cat' and 'cat' both name class 'cat'"):
        folder_classes(["000_cat", "cat", "dog"], **kw)


def _permuted_tree(export_dir, tmp_path):
    """The ImageFolder export rewritten as another repository would in another class order: the folder of digits
    class c is numbered by its position in that order (``003_7``...), the names stay."""
    tree = tmp_path / "permuted"
    position = {c: j for j, c in enumerate(PERM)}
    for folder in (export_dir / "train").iterdir():
        cls = int(folder.name.split("_")[1])
        shutil.copytree(folder, tree / "train" / f"{position[cls]:03d}_{cls}")
    return tree


def test_imagefolder_in_another_class_order_is_remapped_by_name(coreset, digits, tmp_path):
    original = load_synset(coreset)
    exported = export_synset(coreset, fmt="imagefolder", out=tmp_path / "exp")
    tree = _permuted_tree(exported, tmp_path)
    assert sorted(p.name for p in (tree / "train").iterdir())[:2] == ["000_3", "001_7"]
    back = load_synset(import_set("imagefolder", tree, real=digits, out=tmp_path / "in"))
    # Every image is found under its own class (the old reader took 000_3 for class 0).
    for c in range(10):
        want = original.images[original.labels == c]
        got = back.images[back.labels == c]
        assert sorted(map(bytes, want.flatten(1).numpy())) == sorted(map(bytes, got.flatten(1).numpy()))

    # Plain class names are accepted; a bare index is refused unless a class map names it.
    plain = tmp_path / "plain"
    for folder in (exported / "train").iterdir():
        shutil.copytree(folder, plain / folder.name.split("_")[1])
    assert torch.equal(load_synset(import_set("imagefolder", plain, real=digits, out=tmp_path / "in2")).labels.sort()
                       .values, original.labels.sort().values)
    bare = tmp_path / "bare"
    for folder in (tree / "train").iterdir():
        shutil.copytree(folder, bare / folder.name.split("_")[0])
    with pytest.raises(UserError) as err:
        import_set("imagefolder", bare, real=digits, out=tmp_path / "in3")
    assert "is an index, not a class name" in _one_line(err) and "digits's order [0, 1," in str(err.value)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(str(c) for c in PERM) + "\n")
    again = load_synset(import_set("imagefolder", bare, real=digits, out=tmp_path / "in4", classes=names))
    assert torch.equal(again.images, back.images) and torch.equal(again.labels, back.labels)


def test_imagefolder_with_a_foreign_class_name_fails_in_one_line(coreset, digits, tmp_path):
    exported = export_synset(coreset, fmt="imagefolder", out=tmp_path / "exp")
    (exported / "train" / "003_3").rename(exported / "train" / "003_dog")
    with pytest.raises(UserError) as err:
        import_set("imagefolder", exported, real=digits, out=tmp_path / "in")
    text = _one_line(err)
    assert "folder '003_dog' names no class of digits" in text and "000_0, 001_1, 002_2, 003_dog" in text
    assert "digits's order [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in text
    assert not (tmp_path / "in").exists()


def _file_order_tensors(digits):
    """Images of digits classes with labels in the file's class order (label j = class PERM[j]) and soft labels
    whose column j is the file's class j."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat_interleave(2)  # file order
    images = torch.randn(20, 1, 8, 8, generator=g)
    soft = torch.randn(20, 10, generator=g) + 5 * torch.nn.functional.one_hot(labels, 10)
    return images, labels, soft


def test_npz_labels_are_read_through_a_names_file(digits, tmp_path):
    images, labels, soft = _file_order_tensors(digits)
    path = tmp_path / "foreign.npz"
    np.savez(path, images=images.numpy(), labels=labels.numpy(), soft_labels=soft.numpy())
    names = tmp_path / "classes.txt"
    names.write_text("\n".join(str(c) for c in PERM) + "\n")
    s = load_synset(import_set("npz", path, real=digits, out=tmp_path / "a", space="normalized", classes=names))
    assert torch.equal(s.labels, torch.tensor(PERM)[labels])  # file label j -> digits class PERM[j]
    assert torch.equal(s.soft_labels.argmax(1), s.labels)  # the columns moved with the labels
    for j, c in enumerate(PERM):
        assert torch.equal(s.soft_labels[:, c], soft[:, j])
    assert s.provenance["imported"]["class_map"] == {"source": "classes", "names": [str(c) for c in PERM],
                                                     "remapped": True}
    assert s.provenance["data_fingerprint"] == digits.fingerprint()

    # pt takes the same map, as a list of names too.
    pt = tmp_path / "foreign.pt"
    torch.save({"images": images, "labels": labels}, pt)
    t = load_synset(import_set("npz", pt, real=digits, out=tmp_path / "b", space="normalized",
                               classes=[str(c) for c in PERM]))
    assert torch.equal(t.labels, s.labels)

    wrong = tmp_path / "wrong.txt"
    wrong.write_text("\n".join(["dog", *map(str, PERM[1:])]))
    with pytest.raises(UserError) as err:
        import_set("npz", path, real=digits, out=tmp_path / "c", space="normalized", classes=wrong)
    text = _one_line(err)
    assert "does not match digits's classes (not classes of digits: 'dog'; missing: '3')" in text
    assert "its order [dog, 7, 0, 9, 1, 5, 2, 8, 4, 6]; digits's order [0, 1, 2" in text
    assert not (tmp_path / "c").exists()


def test_an_exports_datasheet_class_names_are_checked(coreset, digits, tmp_path, capsys):
    exported = export_synset(coreset, fmt="npz", out=tmp_path / "exp")
    original = load_synset(coreset)
    sheet = json.loads((exported / "datasheet.json").read_text())
    assert sheet["class_names"] == [str(c) for c in range(10)]
    back = load_synset(import_set("npz", exported, real=digits, out=tmp_path / "same"))
    assert torch.equal(back.labels, original.labels) and back.provenance["imported"]["class_map"]["remapped"] is False
    assert "fingerprint" not in capsys.readouterr().err  # the same data: no note

    sheet["class_names"] = [str(c) for c in PERM]  # written by a dd-bench whose dataset had another class order
    sheet["data_fingerprint"] = "0" * 64
    (exported / "datasheet.json").write_text(json.dumps(sheet))
    moved = load_synset(import_set("npz", exported, real=digits, out=tmp_path / "moved"))
    assert torch.equal(moved.labels, torch.tensor(PERM)[original.labels])
    assert "was distilled from data with fingerprint 000000000000" in capsys.readouterr().err

    sheet["class_names"] = ["dog", *sheet["class_names"][1:]]
    (exported / "datasheet.json").write_text(json.dumps(sheet))
    with pytest.raises(UserError) as err:
        import_set("npz", exported, real=digits, out=tmp_path / "bad")
    assert "the export's datasheet class_names" in _one_line(err) and "digits's order [0, 1" in str(err.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_teacher_files_class_map_is_checked_and_applied(digits, tmp_path):
    from safetensors.torch import save_file

    from dd_bench.models import create_model
    from dd_bench.teachers import load_teacher_weights

    kwargs = {"width": 8, "depth": 2}
    module = create_model("convnet_bn", num_classes=10, in_channels=1, image_size=(8, 8),
                          generator=torch.Generator().manual_seed(0), **kwargs).eval()
    x = digits.to_model_space(digits.test_images[:16])
    with torch.no_grad():
        theirs = module(x)  # output j: the file's class j = digits class PERM[j]
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    names = [str(c) for c in PERM]
    load = lambda p: load_teacher_weights(p, model="convnet_bn", real=digits, model_kwargs=kwargs)  # noqa: E731

    plain = tmp_path / "plain.pt"
    torch.save(state, plain)
    assert load(plain).key == "file:plain.pt"  # no map: read as it always was

    inside = tmp_path / "inside.pt"
    torch.save({"state_dict": state, "class_names": names}, inside)
    beside = tmp_path / "beside.safetensors"
    save_file(state, str(beside))
    (tmp_path / "beside.safetensors.classes.txt").write_text("\n".join(names))
    meta = tmp_path / "meta.safetensors"
    save_file(state, str(meta), metadata={"class_names": json.dumps(names)})
    for path in (inside, beside, meta):
        teacher = load(path)
        with torch.no_grad():
            ours = teacher.module(x)
        for j, c in enumerate(PERM):  # digits class c is the file's output j
            torch.testing.assert_close(ours[:, c], theirs[:, j])
        assert teacher.key.startswith(f"file:{path.name}:classes-") and teacher.extra["class_names"] == names

    in_order = tmp_path / "in_order.pt"
    torch.save({"state_dict": state, "class_names": [str(c) for c in range(10)]}, in_order)
    assert load(in_order).key == "file:in_order.pt"

    wrong = tmp_path / "wrong.pt"
    torch.save({"state_dict": state, "class_names": ["dog", *names[1:]]}, wrong)
    with pytest.raises(UserError) as err:
        load(wrong)
    text = _one_line(err)
    assert "the class map of teacher.weights=" in text and "its order [dog, 7, 0" in text
    assert "digits's order [0, 1, 2" in text


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_format_names_its_datasheet_readme_and_carries_the_data_fingerprint(coreset, digits, tmp_path, fmt):
    if fmt == "hf":
        datasets = pytest.importorskip("datasets")
    out = export_synset(coreset, fmt=fmt, out=tmp_path / fmt)
    assert (out / DATASHEET_FILE).is_file() and DATASHEET_FILE == "README.md"
    assert sorted(p.name for p in out.glob("*.md")) == ["README.md"]  # one name in every format (hf wrote DATASHEET)
    sheet = json.loads((out / "datasheet.json").read_text())
    assert sheet["data_fingerprint"] == digits.fingerprint() == read_meta(coreset)["provenance"]["data_fingerprint"]
    assert sheet["class_names"] == list(digits.class_names)
    text = (out / DATASHEET_FILE).read_text()
    assert digits.fingerprint() in text and "classes, in label order: 0, 1, 2" in text
    if fmt == "hf":  # the README beside the arrow files does not disturb load_from_disk
        assert len(datasets.load_from_disk(str(out))) == 20


def test_export_of_an_older_set_computes_the_fingerprint_from_the_data(digits, compose_cfg, tmp_path):
    from dd_bench.app.tasks import run
    from dd_bench.methods import create_method
    from dd_bench.synset import save_synset

    older = create_method("random").distill(digits.without_test(), ipc=1, seed=0, progress=False)
    assert "data_fingerprint" not in older.provenance  # made as sets were before provenance recorded it
    directory = save_synset(older, tmp_path / "older")
    run(compose_cfg("task=export", f"synset={directory}", "format=npz", f"out={tmp_path / 'x'}", "device=cpu"))
    assert json.loads((tmp_path / "x" / "datasheet.json").read_text())["data_fingerprint"] == digits.fingerprint()
