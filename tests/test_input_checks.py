"""Every input is checked before any work (issue 22, item 5): each bad value of a task's keys fails in one line
naming it and the valid options, with no traceback, before any data is read or any set distilled (``seeds=0`` used
to distil for 36 s, then die with a traceback labelled a bug)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dd_bench.app.cli import main
from dd_bench.app.input_checks import check_task_inputs, group_choice_error
from dd_bench.errors import UserError
from dd_bench.resources import CONF_DIR

RUN = ["run", "method=dm", "dataset=digits", "eval=quick", "seeds=1"]


def _error_line(args: list[str], tmp_path: Path, capsys) -> str:
    """The one line a bad command prints (exit 2, no traceback), checked to come before any work."""
    results = tmp_path / "res"
    code = main([*args, f"results={results}", "progress=false", "hydra.run.dir=" + str(tmp_path / "hydra")])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.out + captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert not (results / "synsets").exists() and not (results / "records").exists()  # nothing was distilled
    return lines[0]


# The first-hour trial's commands (check 7), each one line: those that printed Hydra's text or distilled first
# (seeds=0, eval=nope) and those that were already right, kept so.
@pytest.mark.parametrize("bad,expected", [
    ("seeds=0", "error: seeds=0: the number of evaluation networks, an integer >= 1"),
    ("models=convnet", "error: models=convnet: models is a list; write models=[convnet]"),
    ("ipc=one", "error: ipc=one: ipc is an integer (e.g. ipc=1)"),
    ("method.iterashuns=5", "method 'dm' has no option 'iterashuns' (did you mean iterations?); its options: "),
    ("eval=nope", "error: eval=nope: Unknown protocol 'nope'; available: dc, kd, kd-cvdd"),
    ("models=[resnet]", "error: Unknown model 'resnet'; available: alexnet, convnet"),
    ("method=dmm", "error: method=dmm: Unknown method 'dmm' (did you mean dm?); available: cvdd, datm, dc, dm,"),
    ("dataset=cifar11", "Unknown dataset 'cifar11' (did you mean cifar10?); available: cifar10, cifar100"),
    ("logger=wandbb", "Unknown logger 'wandbb' (did you mean wandb?); available: none, wandb"),
    ("experiment=dm_cifar_ipc10", "Unknown experiment 'dm_cifar_ipc10'; closest: dm_cifar10_ipc10"),
    ("scores=[lrss]", "error: scores=['lrss']: Unknown score 'lrss' (did you mean lrs?); available: lrs, ars"),
    ("references=[random]", "Unknown reference kind 'random' (did you mean random_subset?); available: full_data,"),
    ("label_sources=[hard,fdk]", "Unknown label source 'fdk'; available: auto, distance, fkd"),
    ("models=[]", "error: models=[] names no model; give at least one, e.g. models=[convnet]"),
    ("ipc=0", "error: ipc=0: images per class, an integer >= 1"),
    ("validation=1.5", "error: validation=1.5: the held-out fraction of the training set, in (0, 1)"),
    ("eval.lr=-1", "error: eval.lr=-1.0: the learning rate must be > 0"),
    ("eval.epochs=-2", "error: eval.epochs=-2: the last pass index, an integer >= 0"),
    ("image_store=png", "Unknown image_store 'png'; available: native, uint8, jpeg"),
    ("method.init=bogus", "error: method.init=bogus: Unknown init 'bogus'; available: real, noise"),
])
def test_run_fails_in_one_line_before_any_work(bad, expected, tmp_path, capsys):
    assert expected in _error_line([*RUN, bad], tmp_path, capsys)


@pytest.mark.parametrize("args,expected", [
    (["evaluate", "synset=/nonexistent/set", "eval=quick"], "'/nonexistent/set' does not exist"),
    (["demo", "demo.models=[nope]"], "error: Unknown model 'nope'; available: alexnet"),
    (["demo", "demo.kd_protocol=quick"], "demo.kd_protocol=quick: a kd protocol is needed here, and 'quick' is of "
                                         "the mtt family; kd protocols: kd, kd-cvdd"),
    (["demo", "demo.seeds=0"], "error: demo.seeds=0: the number of evaluation networks"),
    (["demo", "demo.references=[full]"], "Unknown reference kind 'full'"),
    (["demo", "demo.protocol=quik"], "Unknown protocol 'quik' (did you mean quick?)"),
    (["import", "format=npz", "path=x.npz", "out=y", "space=pixel"],
     "error: space=pixel: Unknown image space 'pixel' (did you mean pixels?); available: normalized, zca, pixels"),
    (["import", "format=npz", "path=x.npz", "out=y", "space=pixels", "classes=/nonexistent/names.txt"],
     "classes=/nonexistent/names.txt does not exist; expected a names file, one class name per line"),
    (["export", "synset=x", "format=npz", "out=y", "materialise=quick"],
     "materialise=quick: a kd protocol is needed here"),
])
def test_other_tasks_fail_in_one_line_before_any_work(args, expected, tmp_path, capsys):
    assert expected in _error_line(args, tmp_path, capsys)


def test_a_sweep_is_checked_value_by_value():
    assert group_choice_error(["eval=quick,mtt", "method=dm,dc"], conf_dir=CONF_DIR) is None
    assert "Unknown method 'dmm'" in group_choice_error(["method=dm,dmm"], conf_dir=CONF_DIR)
    # Hydra's own sweep functions, interpolations and deletions are Hydra's to check.
    assert group_choice_error(["method=choice(dm,dc)", "eval=glob(*)", "~experiment", "experiment=null"],
                              conf_dir=CONF_DIR) is None


def test_the_checks_run_before_the_task_reads_data(compose_cfg, monkeypatch):
    import dd_bench.app.tasks as tasks
    from dd_bench.app.tasks import run

    def no_data(*args, **kwargs):
        raise AssertionError("data was read before the inputs were checked")

    monkeypatch.setattr(tasks, "load_real", no_data)
    for bad in ("seeds=0", "scores=[nope]", "references=[nope]", "models=[]", "label_source=nope"):
        with pytest.raises(UserError):
            run(compose_cfg("task=run", "method=dm", bad))


def test_keys_a_task_does_not_read_are_not_checked(compose_cfg):
    # distill of DM reads no evaluation keys (CV-DD with priors=sre2l_pp does: it scores sets first).
    check_task_inputs(compose_cfg("task=distill", "method=dm", "seeds=0", "scores=[nope]"))
    with pytest.raises(UserError, match="seeds=0"):
        check_task_inputs(compose_cfg("task=distill", "method=cvdd", "method.priors=sre2l_pp", "seeds=0"))
    check_task_inputs(compose_cfg("task=leaderboard", "models=[nope]"))
