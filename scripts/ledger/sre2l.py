"""The SRe2L pair of the fidelity ledger (VILA-Lab/SRe2L, CIFAR-10 IPC 10, conv3 teacher and student), via pair.py.

    python scripts/ledger/pair.py sre2l-cifar10-ipc10 --official /path/to/SRe2L --data /path/to/cifar10

SRe2L's CIFAR code is ``SRe2L/*small_dataset/``: ``recover_cifar.py`` (recover.sh's flags: 1000 iterations, lr 0.25,
r_bn 0.01, batch 100, jitter 4) and ``relabel_cifar.py`` (the online-teacher KD that is its evaluation: 400 epochs,
batch 128). Both are written for CIFAR-100 and a CIFAR ResNet-18; the pair runs them on CIFAR-10 with the decoupled
family's conv3 teacher (teacher.py) and a conv3 student (the issue's ConvNet-sized student), each change a named
run-time adaptation: the model factory (``conv3_model``), the class count of ``recover_cifar.py`` (three literals,
rewritten in the parsed script before it runs: :func:`class_count_code`), the test set (``cifar_imagefolder``) and the
device (``cuda_on_cpu``).

Steps: the family's; ``official-recover`` (recover_cifar.py for ipc ids 0..ipc-1); ``ddbench-distill``
(``dd-bench distill experiment=sre2l_cifar10_ipc10`` with the conv3 teacher file and the budget values, timed whole
as the official step is); ``ddbench-score`` (``dd-bench evaluate`` of that set, the conv3 student, the same overrides
as the official set's); ``import-official`` (the official JPEGs, their folders renamed ``<index>_<class>``);
``attach-labels`` (the same teacher, BN in train mode: teacher.attach_teacher); ``score-official``;
``cross-check-<i>`` (relabel_cifar.py as shipped on the official set, one run per network, LEDGER_SEED = i).
"""

from __future__ import annotations

import ast
import dataclasses
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import teacher as decoupled  # noqa: E402
from harness import (  # noqa: E402
    ROOT,
    cross_check,
    ddbench_command,
    git_commit,
    only_record,
    run_step,
    timing,
    write_entry,
)
from shims import ADAPTATION_NOTES, write_shim  # noqa: E402

REPOSITORY = "VILA-Lab/SRe2L"
SMALL = Path("SRe2L") / "*small_dataset"  # the CIFAR code's folder in the checkout
EXPERIMENT = "sre2l_cifar10_ipc10"
RECOVER_SHIM = ("cuda_on_cpu", "cuda_copy", "conv3_model")
RELABEL_SHIM = (*RECOVER_SHIM, "cifar_imagefolder")
CLASS_COUNT_CALLS = ("arange", "range", "min")  # the calls in get_images that take CIFAR-100's class count
TEST_ACC = re.compile(r"^Test: Acc@1 ([\d.]+)", re.M)  # relabel_cifar.py's test line

# recover_cifar.py as shipped but for its class count (class_count_code), run as __main__ from its own folder.
RECOVER_DRIVER = '''\
import os, sys
ledger, script, classes = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, ledger)
from sre2l import class_count_code
code = class_count_code(open(script).read(), script, classes)
sys.argv = [script, *sys.argv[4:]]
sys.path[:] = [os.path.dirname(script), *(p for p in sys.path if p != ledger)]  # as `python recover_cifar.py`
exec(code, {"__name__": "__main__", "__file__": script})
'''

RUN_TIME_NOTES = (
    "recover_cifar.py: class count: get_images loops over CIFAR-100's classes (L58 np.arange(100), L60 range(0, 100, "
    "batch_size), L61 min(kk + batch_size, 100)); those three literals become 10 in the parsed script before it "
    "runs (scripts/ledger/sre2l.py class_count_code; nothing else changes; line numbers kept)",
    "recover_cifar.py, relabel_cifar.py: the teacher checkpoint (--arch-path, --teacher-path) is the family's conv3 "
    "as {'state_dict': state} with DataParallel's module. prefix (recover_cifar.py:182-185, relabel_cifar.py:89-92)",
    "relabel_cifar.py: test set: torchvision CIFAR100(root='./data', train=False) (L69) reads the family tree's "
    "full CIFAR-10 test split through cifar_imagefolder (./data/test in the run folder: a symlink)",
    "relabel_cifar.py: the student is the conv3 too (get_model, L75): the issue's ConvNet-sized student",
    "PYTHONPATH holds the shim and the project root (conv3_model builds dd_bench.models' convnet_bn)",
    "cross-check: relabel_cifar.py as shipped, one run per network with LEDGER_SEED = i (it seeds nothing itself); "
    "its last 'Test: Acc@1' line (epoch E-1: the last checkpoint it keeps) is the network's accuracy",
)


def class_count_code(source: str, filename: str, classes: int) -> Any:
    """``source`` (recover_cifar.py) compiled with every literal 100 given to ``np.arange``, ``range`` or ``min`` inside
    ``get_images`` replaced by ``classes``; exactly three such literals, or a SystemExit (another version of the
    script). Nothing else is touched and the line numbers stay the file's."""

    class ClassCount(ast.NodeTransformer):
        inside, rewritten = False, 0

        def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
            outer, self.inside = self.inside, self.inside or node.name == "get_images"
            self.generic_visit(node)
            self.inside = outer
            return node

        def visit_Call(self, node: ast.Call) -> ast.AST:
            self.generic_visit(node)
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if self.inside and name in CLASS_COUNT_CALLS:
                for i, arg in enumerate(node.args):
                    if isinstance(arg, ast.Constant) and type(arg.value) is int and arg.value == 100:
                        node.args[i] = ast.copy_location(ast.Constant(classes), arg)
                        self.rewritten += 1
            return node

    visitor = ClassCount()
    tree = visitor.visit(ast.parse(source, filename))
    if visitor.rewritten != 3:
        raise SystemExit(f"error: {filename}: {visitor.rewritten} class-count literals (100) in get_images' "
                         f"{'/'.join(CLASS_COUNT_CALLS)} calls; recover_cifar.py @ 8d00cba has 3")
    return compile(ast.fix_missing_locations(tree), filename, "exec")


@dataclasses.dataclass(frozen=True)
class SRe2LPair:
    """recover_cifar.py + relabel_cifar.py against ``dd-bench run experiment=sre2l_cifar10_ipc10``; the budget table
    (BUDGET_KEYS) hands each value to both sides. ``reduced``: (field, the official scripts' value)."""

    name: str
    family: decoupled.Family
    ipc: int
    iterations: int
    lr: float
    r_bn: float
    batch_size: int
    jitter: int
    first_bn_multiplier: float
    eval_epochs: int
    nets: int = 5
    seed: int = 0
    reduced: tuple[tuple[str, Any], ...] = ()
    smoke: bool = False

    def budget(self) -> dict[str, Any]:
        return {**self.family.budget(), **{f: getattr(self, f) for f, _, _ in BUDGET_KEYS},
                "eval_epochs": self.eval_epochs, "eval_networks": self.nets, "student": decoupled.STUDENT,
                "distill_seed": self.seed}

    def recover_flags(self, *, teacher_file: Path, out: Path) -> list[str]:
        return ["--arch-name", "resnet18", "--arch-path", str(teacher_file), "--exp-name", "ledger",
                "--syn-data-path", str(out), *[x for f, flag, _ in BUDGET_KEYS for x in (flag, str(getattr(self, f)))],
                "--store-best-images", "--ipc-start", "0", "--ipc-end", str(self.ipc)]

    def relabel_flags(self, *, teacher_file: Path, syn: Path, out: Path) -> list[str]:
        return ["--epochs", str(self.eval_epochs), "--output-dir", str(out), "--syn-data-path", str(syn),
                "--teacher-path", str(teacher_file), "--ipc", str(self.ipc), "--batch-size", "128"]

    def ddbench_overrides(self) -> list[str]:
        return [f"ipc={self.ipc}", *[f"{key}={getattr(self, f)}" for f, _, key in BUDGET_KEYS],
                f"eval.epochs={self.eval_epochs}"]


# (field, recover_cifar.py flag, dd-bench override). ipc: --ipc-end (recover) and --ipc (relabel); eval_epochs:
# relabel_cifar.py's --epochs and dd-bench's eval.epochs.
BUDGET_KEYS = (("iterations", "--iteration", "method.iterations"), ("lr", "--lr", "method.lr"),
               ("r_bn", "--r-bn", "method.r_bn"), ("batch_size", "--batch-size", "method.batch_size"),
               ("jitter", "--jitter", "method.jitter"),
               ("first_bn_multiplier", "--first-bn-multiplier", "method.first_bn_multiplier"))
# recover_cifar.sh's values; relabel_cifar.sh's 400 epochs -> 200: about 75 min on 2 idle cores (README).
PAIRS: dict[str, SRe2LPair] = {p.name: p for p in (
    SRe2LPair("sre2l-cifar10-ipc10", decoupled.FAMILY, ipc=10, iterations=1000, lr=0.25, r_bn=0.01, batch_size=100,
              jitter=4, first_bn_multiplier=10.0, eval_epochs=200, reduced=(("eval_epochs", 400),)),
)}


def smoke(pair: SRe2LPair) -> SRe2LPair:
    """The plumbing check: the smoke family, IPC 1, 5 recovery iterations, 1 evaluation epoch."""
    return dataclasses.replace(pair, family=decoupled.SMOKE_FAMILY, ipc=1, iterations=5, eval_epochs=1, smoke=True)


def stage_official_set(syn: Path, *, tree: Path, out: Path) -> dict[str, Any]:
    """recover_cifar.py's ``new<class:03d>/`` folders copied as ``<class:03d>_<name>/`` (the names dd-bench import
    reads a class from; the files unchanged), for ``format=imagefolder``."""
    names = {int(p.name.split("_", 1)[0]): p.name for p in (tree / "train").iterdir() if p.is_dir()}
    found = sorted(p for p in syn.iterdir() if p.is_dir() and re.fullmatch(r"new\d{3}", p.name))
    if sorted(int(p.name[3:]) for p in found) != sorted(names):
        raise SystemExit(f"error: {syn} holds {[p.name for p in found]}; one new<class> folder per class expected")
    shutil.rmtree(out, ignore_errors=True)
    for folder in found:
        shutil.copytree(folder, out / names[int(folder.name[3:])])
    return {"dir": str(out), "from": str(syn), "images": sum(1 for _ in out.rglob("*.jpg"))}


def official_run_dir(run: Path, *, tree: Path) -> Path:
    """The folder the official scripts run in: ./data/test -> the tree's test split (relabel_cifar.py's root)."""
    link = run / "data" / "test"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to((tree / "test").resolve(), target_is_directory=True)
    return run


def relabel_accuracies(log: Path) -> list[float]:
    """relabel_cifar.py's test accuracies, in order (epochs 0, 10, ..., and the last)."""
    return [float(a) for a in TEST_ACC.findall(log.read_text())]


def run(pair: SRe2LPair, *, official: Path, data: Path, work: Path, out: Path, timing_note: str = "") -> Path:
    small = official / SMALL
    if not (small / "recover_cifar.py").is_file():
        raise SystemExit(f"error: {official} is no SRe2L checkout ({SMALL}/recover_cifar.py is missing)")
    fam = decoupled.prepare_family(pair.family, data=data, work=work)
    tree, folder = fam["tree"], work / pair.family.name / pair.name
    folder.mkdir(parents=True, exist_ok=True)
    run_dir = official_run_dir(folder / "official-run", tree=tree)
    teacher_file = fam["files"]["sre2l"]
    path = os.pathsep.join([str(write_shim(folder / "shim-recover", RECOVER_SHIM)), str(ROOT)])
    env = {"PYTHONPATH": path, "LEDGER_SEED": str(pair.seed), "LEDGER_NUM_CLASSES": "10"}
    driver = folder / "recover_driver.py"
    driver.write_text(RECOVER_DRIVER)
    syn_root = folder / "official-syn"
    official_cmd = [sys.executable, str(driver), str(Path(__file__).resolve().parent), str(small / "recover_cifar.py"),
                    "10", *pair.recover_flags(teacher_file=teacher_file, out=syn_root)]
    step_official = run_step(folder, "official-recover", official_cmd, cwd=run_dir, env=env)
    syn = syn_root / "ledger"

    # Both sets are scored by the same evaluate overrides.
    scoring = ["dataset=cifar10", f"dataset.root={tree}", "eval=kd", f"eval.epochs={pair.eval_epochs}",
               "models=[convnet_bn]", f"seeds={pair.nets}", "references=[]", "progress=false"]
    side = decoupled.ddbench_side(folder, distill=[
        f"experiment={EXPERIMENT}", f"seed={pair.seed}", f"dataset.root={tree}",
        f"method.teacher={decoupled.ARCH_RECIPE}", f"method.teacher_weights={fam['files']['ddbench']}",
        *[o for o in pair.ddbench_overrides() if not o.startswith("eval.")]], score=scoring)
    staged = stage_official_set(syn, tree=tree, out=folder / "official-set-files")
    imported, labelled = folder / "official-imported", folder / "official-set"
    run_step(folder, "import-official", ddbench_command(
        "format=imagefolder", f"path={staged['dir']}", "dataset=cifar10", f"dataset.root={tree}", f"out={imported}",
        "name=sre2l_official", task="import"), cwd=folder)
    run_step(folder, "attach-labels", [sys.executable, str(decoupled.SCRIPT), "_attach", "--imported", str(imported),
                                       "--like", str(side["synset"]), "--out", str(labelled)], cwd=folder)
    score_cmd = ddbench_command(f"synset={labelled}", *scoring, f"results={folder / 'official-scored'}",
                                task="evaluate")
    step_score = run_step(folder, "score-official", score_cmd, cwd=folder)
    relabel_env = {**env, "PYTHONPATH": os.pathsep.join([str(write_shim(folder / "shim-relabel", RELABEL_SHIM)),
                                                          str(ROOT)])}
    cross, cross_cmds = [], []
    for i in range(pair.nets):
        cmd = [sys.executable, str(small / "relabel_cifar.py"),
               *pair.relabel_flags(teacher_file=teacher_file, syn=syn, out=folder / f"cross-check-{i}")]
        step = run_step(folder, f"cross-check-{i}", cmd, cwd=run_dir, env={**relabel_env, "LEDGER_SEED": str(i)})
        cross.append({"seed": i, "tests": relabel_accuracies(Path(step["log"])), "seconds": step["wall_seconds"]})
        cross_cmds.append(cmd)
    return _entry(pair, fam=fam, folder=folder, out=out, timing_note=timing_note, commit=git_commit(official),
                  commands={"official": official_cmd, "ours": side["distill_command"],
                            "ours_score": side["score_command"], "score": score_cmd, "cross": cross_cmds[0]},
                  steps={"official": step_official, "ours": side["distill_step"], "ours_score": side["score_step"],
                         "score": step_score}, env=env,
                  relabel_env=relabel_env, cross=cross, staged=staged)


def _entry(pair: SRe2LPair, *, fam: dict[str, Any], folder: Path, out: Path, timing_note: str, commit: str,
           commands: dict[str, list[str]], steps: dict[str, dict[str, Any]], env: dict[str, str],
           relabel_env: dict[str, str], cross: list[dict[str, Any]], staged: dict[str, Any]) -> Path:
    ours, theirs = only_record(folder / "ddbench"), only_record(folder / "official-scored")
    if not all(c["tests"] for c in cross):
        raise SystemExit(f"error: a relabel_cifar.py run printed no 'Test: Acc@1' line ({folder}/cross-check-*.log)")
    finals = [c["tests"][-1] for c in cross]
    official_wall = steps["official"]["wall_seconds"]
    cross_seconds = sum(c["seconds"] for c in cross)
    recover = [f"recover_cifar.py: {ADAPTATION_NOTES[n]}" for n in ("seed", *RECOVER_SHIM)]
    relabel = [f"relabel_cifar.py: {ADAPTATION_NOTES[n]}" for n in ("seed", *RELABEL_SHIM)]
    return write_entry(
        out, pair=pair.name, method="sre2l", dataset="cifar10", ipc=pair.ipc,
        official={"repository": REPOSITORY, "commit": commit, "command": shlex.join(commands["official"]),
                  "wall_seconds": official_wall, "environment": env, "staged_set": staged,
                  "adaptations": [*recover, *relabel, *RUN_TIME_NOTES],
                  "notes": ["wall_seconds: the whole official-recover step (interpreter start, the teacher loaded "
                            "once per ipc id, the JPEG files)",
                            "the images are saved as JPEG (PIL's quality 75, recover_cifar.py:165-167) and "
                            "relabel_cifar.py trains on those files; dd-bench's experiment stores its set the same "
                            "way (image_store=jpeg)",
                            "relabel_cifar.py never puts the teacher in eval mode (its BN uses batch statistics); "
                            "dd-bench's experiment does the same (method.teacher_bn_train=true)"]},
        ddbench=decoupled.ddbench_entry(ours, commands=commands, steps=steps, experiment=EXPERIMENT, bn="train"),
        budget=pair.budget(), data={**decoupled.data_record(fam), "root_layout": (
            "one ImageFolder tree (train/: the subset, test/: the full test set; PNG, <index>_<class> folders): "
            "dd-bench's dataset.root (SRe2L reads no training image); relabel_cifar.py's ./data/test")},
        scoring={"evaluator": "dd-bench (eval=kd: SRe2L's relabel_cifar.py recipe: AdamW 1e-3 / 0.01, cosine, "
                              "batch 128, RandomCrop(32, 4) + flip, MixUp 0.8, KL at T=30, the teacher online in "
                              "train-mode BN), final epoch",
                 "protocol": f"kd, eval.epochs={pair.eval_epochs}", "model": "convnet_bn",
                 "official_set_command": shlex.join(commands["score"]),
                 "official_set_wall_seconds": steps["score"]["wall_seconds"]},
        ours=ours.accuracies, theirs=theirs.accuracies, wall_time_ratio=steps["ours"]["wall_seconds"] / official_wall,
        reproduce=f"python scripts/ledger/pair.py {pair.name} --official SRe2L --data CIFAR10",
        extra={"recipe": {"official_scripts": [str(SMALL / "recover_cifar.sh"), str(SMALL / "relabel_cifar.sh")],
                          "experiment": EXPERIMENT, "reduced_from_official": dict(pair.reduced),
                          "teacher": decoupled.teacher_record(fam),
                          "changed_from_official": {"dataset": "CIFAR-10 (the scripts are CIFAR-100's)",
                                                    "teacher_and_student": "conv3 (the scripts' CIFAR ResNet-18)"}},
               "cross_check": cross_check(
                   evaluator=f"official relabel_cifar.py ({pair.nets} runs, LEDGER_SEED = i; its last test, epoch "
                             f"{pair.eval_epochs - 1})", official=finals, ddbench=theirs.accuracies, runs=cross,
                   command=shlex.join(commands["cross"]), environment=relabel_env, wall_seconds=cross_seconds),
               "evaluation_timing": {"ddbench_seconds": theirs.eval_seconds, "official_seconds": cross_seconds,
                                     "ratio": theirs.eval_seconds / cross_seconds if cross_seconds else None,
                                     "basis": f"the official set's {pair.nets} networks: dd-bench evaluate's "
                                              "eval_seconds / the relabel_cifar.py steps' wall (it tests every 10 "
                                              "epochs; dd-bench once)"},
               **timing(basis="whole commands: dd-bench distill / the official recovery step, each with its "
                              "interpreter start-up, imports and teacher loading", note=timing_note,
                        official_recover=steps["official"], ddbench_distill=steps["ours"],
                        ddbench_score=steps["ours_score"])})
