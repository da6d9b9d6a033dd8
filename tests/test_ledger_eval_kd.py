"""The kd evaluator pair of the fidelity ledger (scripts/ledger/eval_kd.py): the random draw both sides read, one
relabel_cifar.py run per network on the same files, and the entry, without running anything of the official code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_ledger_rded import _family, _ledger, fake_record


def _tree(tmp_path: Path, per_class: int = 6) -> Path:
    tree = _family(tmp_path)["tree"]
    for folder in (tree / "train").iterdir():
        for j in range(per_class):
            (folder / f"{j:05d}.png").write_bytes(f"{folder.name}/{j}".encode())
    return tree


def test_the_random_draw_is_class_balanced_seeded_and_copies_the_files_unchanged(tmp_path):
    eval_kd = _ledger("eval_kd")
    tree = _tree(tmp_path)
    a = eval_kd.random_files(tree, ipc=2, seed=0, out=tmp_path / "a")
    b = eval_kd.random_files(tree, ipc=2, seed=0, out=tmp_path / "b")
    c = eval_kd.random_files(tree, ipc=2, seed=1, out=tmp_path / "c")
    assert a["files"] == b["files"] and a["files_sha256"] == b["files_sha256"] != c["files_sha256"]
    assert a["images"] == 20 and all(len(list(d.iterdir())) == 2 for d in (tmp_path / "a").iterdir())
    first = a["files"][0]
    assert (tmp_path / "a" / first).read_bytes() == (tree / "train" / first).read_bytes()
    with pytest.raises(SystemExit, match="ipc 7 needs that many"):
        eval_kd.random_files(tree, ipc=7, seed=0, out=tmp_path / "d")


def test_the_kd_evaluator_pair_scores_one_set_with_both_routines_and_writes_a_valid_entry(tmp_path, monkeypatch):
    """Steps stubbed: the same files reach dd-bench's import and every relabel_cifar.py run; the entry passes
    check_entry with one number per network from each routine."""
    eval_kd, sre2l = _ledger("eval_kd"), _ledger("sre2l")
    from dd_bench.results.ledger import check_entry

    pair = eval_kd.PAIRS["eval-kd-cifar10-random-ipc10"]
    official = tmp_path / "SRe2L"
    (official / sre2l.SMALL).mkdir(parents=True)
    (official / sre2l.SMALL / "relabel_cifar.py").write_text("")
    work = tmp_path / "w"
    monkeypatch.setattr(eval_kd.decoupled, "prepare_family", lambda family, data, work: _family(tmp_path))
    with pytest.raises(SystemExit, match="run sre2l-cifar10-ipc10 first"):
        eval_kd.run(pair, official=official, data=tmp_path / "data", work=work, out=tmp_path)
    like = work / pair.family.name / "sre2l-cifar10-ipc10" / "ddbench" / "synsets" / "s"
    like.mkdir(parents=True)
    (like / "meta.json").write_text("{}")
    commands = {}

    def fake_step(folder, name, command, *, cwd=None, env=None):
        commands[name] = (command, cwd, env)
        log = folder / f"{name}.log"
        if name == "random-files":
            out = Path(command[command.index("--out") + 1])
            out.with_suffix(".json").write_text(json.dumps({"dir": str(out), "images": 100, "seed": 0, "files": [],
                                                            "files_sha256": "ab" * 32}))
        seed = int((env or {}).get("LEDGER_SEED", 0))
        log.write_text(f"Test: Acc@1 20.0, Loss 2\nTest: Acc@1 {30 + seed / 10}, Loss 2\n"
                       if name.startswith("official-") else "")
        return {"wall_seconds": 60.0, "log": str(log), "command": " ".join(map(str, command))}

    monkeypatch.setattr(eval_kd, "run_step", fake_step)
    monkeypatch.setattr(eval_kd, "git_commit", lambda path: "0" * 40)
    monkeypatch.setattr(eval_kd, "only_record", lambda results: fake_record([30.2, 30.0, 30.3, 30.1, 30.4]))
    path = eval_kd.run(pair, official=official, data=tmp_path / "data", work=work, out=tmp_path)

    files = commands["random-files"][0][commands["random-files"][0].index("--out") + 1]
    assert f"path={files}" in commands["import-random"][0]
    assert commands["attach-labels"][0][commands["attach-labels"][0].index("--like") + 1] == str(like)
    score = commands["ddbench-score"][0]
    assert "eval=kd" in score and "eval.epochs=200" in score and "models=[convnet_bn]" in score and "seeds=5" in score
    for i in range(5):
        cmd, _, env = commands[f"official-{i}"]
        assert cmd[1].endswith("relabel_cifar.py") and cmd[cmd.index("--syn-data-path") + 1] == files
        assert cmd[cmd.index("--epochs") + 1] == "200" and cmd[cmd.index("--ipc") + 1] == "10"
        assert env["LEDGER_SEED"] == str(i)
    entry = check_entry(json.loads(path.read_text()))
    assert entry["accuracies"]["official"] == pytest.approx([30.0, 30.1, 30.2, 30.3, 30.4])
    assert entry["kind"] == "evaluators" and entry["method"] == "evaluator: random set"
    assert entry["wall_time_ratio"] == pytest.approx(300.0 / 300.0) and entry["verdict"] == "agree"
