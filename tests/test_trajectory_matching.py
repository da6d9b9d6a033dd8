"""Trajectory matching end to end on tiny settings: every switch, resume, divergence, and quality on digits."""

from __future__ import annotations

import statistics

import pytest
import torch

from dd_bench.data import RealData
from dd_bench.eval import evaluate, get_protocol
from dd_bench.methods import METHODS, create_method

TINY = METHODS.get("mtt").TEST_OPTIONS


def _flip_safe_dataset() -> RealData:
    """A CIFAR-like random dataset (3x8x8, 10 classes) whose DSA strategy includes flip, for FYI."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (200, 3, 8, 8), generator=g, dtype=torch.uint8)
    labels = torch.arange(10).repeat_interleave(20)
    return RealData(name="toy", train_images=images, train_labels=labels, test_images=images[:50],
                    test_labels=labels[:50], class_names=[str(i) for i in range(10)], mean=(0.5, 0.5, 0.5),
                    std=(0.3, 0.3, 0.3), dsa_strategy="color_crop_cutout_flip_scale_rotate")


@pytest.mark.parametrize("switches", [
    {"grad_mode": "tesla"},
    {"grad_mode": "recompute", "labels": "learned"},
    {"labels": "learned", "init": "correct", "update_threshold": 10.0, "sequential_generation": True,
     "current_max_start_epoch": 1, "expansion_end_epoch": 2},
    {"labels": "learned", "grad_mode": "tesla"},
    {"ema_decay": 0.9},
    {"batch_syn": 3, "init": "noise"},
    {"expert_optimizer": "gsam"},
], ids=lambda d: "-".join(f"{k}={v}" for k, v in d.items()))
def test_switches_run_end_to_end(digits, switches):
    synset = create_method("mtt", **{**TINY, **switches}).distill(digits, ipc=1, seed=0, progress=False)
    assert synset.images.shape == (10, 1, 8, 8) and torch.isfinite(synset.images).all()
    assert synset.learned_lr is not None and synset.learned_lr != 0.0
    if switches.get("labels") == "learned":
        assert synset.label_kind == "soft_logits" and synset.soft_labels.shape == (10, 10)
    if "ema_decay" in switches:
        assert "images_raw" in synset.extras and not torch.equal(synset.extras["images_raw"], synset.images)
    assert synset.provenance["distill_status"]["iterations_done"] == TINY["iterations"]


def test_fyi_runs_on_a_flip_safe_dataset_and_names_the_set():
    synset = create_method("mtt", **TINY, fyi=True).distill(_flip_safe_dataset(), ipc=2, seed=0, progress=False)
    assert synset.method == "mtt_fyi" and torch.isfinite(synset.images).all()


def test_fyi_on_digits_fails_clearly(digits):
    with pytest.raises(ValueError, match="flip"):
        create_method("mtt", **TINY, fyi=True).distill(digits, ipc=1, seed=0, progress=False)


def test_bad_options_fail_before_work():
    with pytest.raises(ValueError, match="Unknown grad_mode 'exact'.*available: auto, recompute, unrolled, tesla"):
        create_method("mtt", grad_mode="exact")
    with pytest.raises(ValueError, match="cannot reach start epoch"):
        create_method("mtt", expert_train_epochs=10, max_start_epoch=20, expert_epochs=2)
    with pytest.raises(ValueError, match="Unknown labels"):
        create_method("datm", labels="soft")
    with pytest.raises(ValueError, match="eval_every >= 0 .* got -1"):
        create_method("mtt", eval_every=-1)
    with pytest.raises(ValueError, match="Unknown model 'convnett' .*eval_model; available: .*convnet"):
        create_method("mtt", eval_every=10, eval_model="convnett")
    with pytest.raises(ValueError, match="Unknown protocol 'mttt'; available: .*mtt-ftd-warm"):
        create_method("mtt", eval_every=10, eval_protocol="mttt")
    with pytest.raises(ValueError, match="Unknown expert_sampling"):
        create_method("mtt", expert_sampling="sometimes")


def test_datm_defaults_are_its_own():
    cfg = create_method("datm").cfg
    assert (cfg.init, cfg.labels, cfg.sequential_generation, cfg.update_threshold, cfg.expert_optimizer) == \
        ("correct", "learned", True, 1.0, "gsam")
    assert create_method("ftd").cfg.ema_decay > 0 and create_method("tesla").cfg.grad_mode == "tesla"


def test_divergence_keeps_the_last_good_state(digits):
    synset = create_method("mtt", **{**TINY, "iterations": 3}, lr_img=1e38).distill(digits, ipc=1, seed=0,
                                                                                     progress=False)
    status = synset.provenance["distill_status"]
    assert status["stopped_early"] and torch.isfinite(synset.images).all()


def test_resume_equals_uninterrupted(digits, tmp_path, monkeypatch):
    opts = {**TINY, "iterations": 4, "checkpoint_every": 2, "labels": "learned", "ema_decay": 0.5}
    whole = create_method("mtt", **opts).distill(digits, ipc=1, seed=0, progress=False)

    import dd_bench.methods.tm.trajectory_matching as tm

    calls = {"n": 0}
    original = tm.matching_gradient

    def crash_on_fourth(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:  # iteration 3, after the checkpoint at 2
            raise KeyboardInterrupt
        return original(*a, **k)

    monkeypatch.setattr(tm, "matching_gradient", crash_on_fourth)
    with pytest.raises(KeyboardInterrupt):
        create_method("mtt", **opts).distill(digits, ipc=1, seed=0, progress=False, checkpoint_dir=tmp_path)
    monkeypatch.setattr(tm, "matching_gradient", original)
    resumed = create_method("mtt", **opts).distill(digits, ipc=1, seed=0, progress=False, checkpoint_dir=tmp_path)
    assert resumed.provenance["distill_status"]["resumed_from"] == 2
    torch.testing.assert_close(resumed.images, whole.images)
    torch.testing.assert_close(resumed.soft_labels, whole.soft_labels)
    assert resumed.learned_lr == pytest.approx(whole.learned_lr)


@pytest.mark.parametrize("name", ["mtt", "ftd", "datm"])
def test_beats_random_real_at_ipc1_on_digits(digits, name):
    """Quality: the digits preset vs a random real IPC 1 subset, quick protocol, ConvNet, mean of 3 seeds."""
    from conftest import preset_options

    method = create_method(name, **preset_options(name))
    protocol = get_protocol("quick")
    scores = {}
    for label, m in ((name, method), ("random", create_method("random"))):
        synset = m.distill(digits, ipc=1, seed=0, progress=False)
        (res,) = evaluate(synset, real=digits, protocol=protocol, models=["convnet"], seeds=[0, 1, 2], progress=False)
        scores[label] = statistics.fmean(res.accuracies)
    assert scores[name] >= scores["random"] + 5.0, scores


def test_distills_from_imported_official_replay_buffers(digits, tmp_path):
    """Experts exported in the official replay_buffer_{n}.pt layout drive distillation via expert_buffers=."""
    from dd_bench.experts import ExpertRecipe, export_replay_buffers, get_experts

    experts = get_experts(digits, ExpertRecipe(model_kwargs={"width": 8}, epochs=2), num_experts=2,
                          cache_dir=tmp_path / "cache", progress=False)
    export_replay_buffers(experts, tmp_path / "buffers", per_file=1)
    options = {**TINY, "expert_buffers": str(tmp_path / "buffers" / "replay_buffer_*.pt")}
    synset = create_method("mtt", **options).distill(digits, ipc=1, seed=0, progress=False)
    status = synset.provenance["distill_status"]
    assert status["experts"]["source"] == "imported" and status["experts"]["count"] == 2
    with pytest.raises(FileNotFoundError, match="matches no file"):
        create_method("mtt", **{**TINY, "expert_buffers": str(tmp_path / "none_*.pt")}).distill(
            digits, ipc=1, seed=0, progress=False)


def _indexed_dataset() -> RealData:
    """20 training images per class for 2 classes; image i is the constant pixel value i (so a classifier can
    tell which image it sees)."""
    images = torch.arange(40, dtype=torch.uint8).view(40, 1, 1, 1).expand(40, 1, 4, 4).contiguous()
    labels = torch.arange(2).repeat_interleave(20)
    return RealData(name="indexed", train_images=images, train_labels=labels, test_images=images[:4],
                    test_labels=labels[:4], class_names=["a", "b"], mean=(0.0,), std=(1.0,), dsa_strategy="")


def _classifier_right_on(real: RealData, right: set[int]):
    """Logits (B, 2) that name the true class exactly for the training images whose index is in ``right``."""
    def classify(x: torch.Tensor) -> torch.Tensor:
        index = (x[:, 0, 0, 0] * 255).round().long()  # mean 0, std 1: model space is pixel / 255
        true = real.train_labels[index]
        pred = torch.where(torch.tensor([int(i) in right for i in index]), true, 1 - true)
        return torch.nn.functional.one_hot(pred, 2).float()
    return classify


def test_correct_init_cycles_to_the_next_expert_before_filling():
    """DATM.py L190-232: a class the first expert gets mostly wrong is completed by the next expert's correct
    images (what the first found is kept); only when every expert is used up is it filled, and counted."""
    from dd_bench.methods.tm.labels import correctly_classified_init

    real = _indexed_dataset()
    first = _classifier_right_on(real, {0, 1} | set(range(20, 40)))  # class 0: only images 0 and 1
    second = _classifier_right_on(real, {5, 6, 7})
    idx, info = correctly_classified_init(real, ipc=4, classifiers=[first, second],
                                          generator=torch.Generator().manual_seed(0), batch_size=8)
    class0 = set(idx[:4].tolist())
    assert {0, 1} <= class0 and len(class0 - {0, 1} - {5, 6, 7}) == 0 and len(class0) == 4
    assert all(20 <= i < 40 for i in idx[4:].tolist())
    assert info == {"experts_used": [2, 1], "filled": [0, 0]}
    idx, info = correctly_classified_init(real, ipc=6, classifiers=[first, second],
                                          generator=torch.Generator().manual_seed(0))
    assert {0, 1, 5, 6, 7} <= set(idx[:6].tolist()) and info["filled"] == [1, 0]


def test_datm_real_init_takes_one_experts_logits_as_labels(digits, monkeypatch):
    """DATM.py L309-319: with random real images the learned labels start as expert 0's final-epoch logits on
    them, unfiltered and unaveraged (a hand-built buffer of two different experts tells the rules apart)."""
    from dd_bench.experts import ExpertTrajectories, FlatModel
    from dd_bench.models import create_model

    kwargs = {"num_classes": 10, "in_channels": 1, "image_size": (8, 8), "width": 8}
    nets = [create_model("convnet", generator=torch.Generator().manual_seed(s), **kwargs) for s in range(4)]
    flat = FlatModel(nets[0])
    params = torch.stack([torch.stack([flat.flatten(nets[2 * e]), flat.flatten(nets[2 * e + 1])]) for e in range(2)])
    experts = ExpertTrajectories(params=params, model="convnet", model_kwargs=kwargs, key="hand-built",
                                 source="imported")
    options = {**TINY, "num_experts": 2, "labels": "learned", "init": "real", "lr_img": 0.0, "lr_lr": 0.0,
               "lr_label": 0.0}
    method = create_method("datm", **options)
    monkeypatch.setattr(method, "load_experts", lambda real, **kw: experts)
    synset = method.distill(digits, ipc=1, seed=0, progress=False)
    expected = flat.forward(params[0, -1], synset.images)
    torch.testing.assert_close(synset.soft_labels, expected, rtol=1e-5, atol=1e-6)
    other = flat.forward(params[1, -1], synset.images)
    assert not torch.allclose(synset.soft_labels, (expected + other) / 2, atol=1e-3)
    assert synset.provenance["distill_status"]["init"]["label_init"] == "expert 0"


def test_experts_are_sampled_once_per_pass_without_replacement(digits):
    """MTT distill.py L305-322: shuffled experts taken in order, reshuffled when all are used; --load_all draws
    with replacement. The method records how often each expert was matched."""
    from dd_bench.methods.tm.schedule import ExpertSampler

    sampler = ExpertSampler(5, "without_replacement", torch.Generator().manual_seed(0))
    draws = [sampler.next() for _ in range(15)]
    assert all(sorted(draws[i:i + 5]) == list(range(5)) for i in range(0, 15, 5))
    assert draws[:5] != draws[5:10] or draws[5:10] != draws[10:]  # reshuffled between passes
    replaced = ExpertSampler(5, "with_replacement", torch.Generator().manual_seed(0))
    assert any(sorted(replaced.next() for _ in range(5)) != list(range(5)) for _ in range(5))
    # A resumed sampler continues the pass it was in.
    resumed = ExpertSampler(5, "without_replacement", torch.Generator().manual_seed(0))
    for _ in range(7):
        resumed.next()
    again = ExpertSampler(5, "without_replacement", sampler.generator)
    again.load_state(resumed.state())
    assert again.order == resumed.order and again.position == 2
    options = {**TINY, "num_experts": 2, "iterations": 4}
    synset = create_method("mtt", **options).distill(digits, ipc=1, seed=0, progress=False)
    assert synset.provenance["distill_status"]["expert_sampling"] == {"mode": "without_replacement", "uses": [2, 2]}


def test_ftd_warm_protocol_continues_the_raw_images_networks(digits, monkeypatch):
    """distill_FTD.py L223-242: the network trained on the raw images is trained again (warm) on the EMA images;
    mtt-ftd-warm does that per seed, with fresh streams for the second stage, and fails on sets without raw images."""
    import sys

    from dd_bench.errors import UserError
    from dd_bench.eval import custom_protocol

    mtt_module = sys.modules["dd_bench.eval.mtt"]  # the mtt recipe's training function lives here
    synset = create_method("ftd", **{**TINY, "ema_decay": 0.9}).distill(digits, ipc=1, seed=0, progress=False)
    calls = []
    real_train = mtt_module.train_networks

    def spy(**kw):
        trained = real_train(**kw)
        calls.append((kw["images"], kw.get("start"), kw.get("stage", 0), trained))
        return trained

    monkeypatch.setattr(mtt_module, "train_networks", spy)
    protocol = custom_protocol("mtt-ftd-warm", epochs=1)
    (warm,) = evaluate(synset, real=digits, protocol=protocol, models=["mlp"], seeds=[0, 1], progress=False)
    (raw_call, ema_call) = calls
    assert torch.equal(raw_call[0], synset.extras["images_raw"]) and raw_call[1] is None
    assert torch.equal(ema_call[0], synset.images) and ema_call[1] is raw_call[3] and ema_call[2] == 1
    # The second stage started from the first stage's weights: its seed-0 network differs from a fresh one's.
    calls.clear()
    evaluate(synset, real=digits, protocol=custom_protocol("mtt", epochs=1), models=["mlp"],
             seeds=[0, 1], progress=False)
    (only,) = calls
    a, b = ema_call[3].seed_parameters(0), only[3].seed_parameters(0)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    assert warm.protocol == "mtt-ftd-warm+custom" and len(warm.accuracies) == 2
    plain = create_method("mtt", **TINY).distill(digits, ipc=1, seed=0, progress=False)
    with pytest.raises(UserError, match="has none .*ema_decay > 0.*eval=mtt"):
        evaluate(plain, real=digits, protocol=protocol, models=["mlp"], seeds=[0], progress=False)


def test_checkpoint_selection_keeps_the_best_validation_state(digits, monkeypatch):
    """eval_every scores the set on the validation split (a scripted curve here) and the best state becomes the set:
    its images equal those of a run stopped at that iteration; the curve is in the provenance; eval_from skips
    earlier candidates; without a validation split it fails in one line."""
    import dd_bench.eval as eval_package
    from dd_bench.data.validation import split_validation
    from dd_bench.errors import UserError
    from dd_bench.eval import EvalResult

    real, _ = split_validation(digits, fraction=0.1, seed=0)
    real = real.without_test()
    curve = iter([50.0, 80.0, 60.0])
    seen = []

    def scripted(synset, *, real, protocol, models, seeds, progress):
        seen.append((len(real.test_labels), protocol.name, len(seeds)))
        acc = next(curve)
        return [EvalResult(model=models[0], protocol=protocol.name, protocol_version=1, seeds=seeds,
                           accuracies=[acc] * len(seeds), eval_seconds=0.0, peak_memory={}, lr=0.01, batched=False)]

    monkeypatch.setattr(eval_package, "evaluate", scripted)
    options = {**TINY, "iterations": 6, "eval_every": 2, "eval_networks": 2, "eval_protocol": "quick",
               "eval_epochs": 1}
    selected = create_method("mtt", **options).distill(real, ipc=1, seed=0, progress=False)
    selection = selected.provenance["distill_status"]["selection"]
    assert selection["curve"] == [[2, 50.0], [4, 80.0], [6, 60.0]] and selection["best_iteration"] == 4
    assert selection["split"] == "validation" and 0.0 <= selection["share_of_wall_time"] <= 1.0
    assert seen == [(len(real.val_labels), "quick+custom", 2)] * 3  # scored on the validation images only
    at_four = create_method("mtt", **{**TINY, "iterations": 4}).distill(real, ipc=1, seed=0, progress=False)
    last = create_method("mtt", **{**TINY, "iterations": 6}).distill(real, ipc=1, seed=0, progress=False)
    assert torch.equal(selected.images, at_four.images) and not torch.equal(selected.images, last.images)
    assert selected.learned_lr == at_four.learned_lr

    curve = iter([70.0, 65.0])
    late = create_method("mtt", **{**options, "eval_from": 4}).distill(real, ipc=1, seed=0, progress=False)
    assert late.provenance["distill_status"]["selection"]["curve"] == [[4, 70.0], [6, 65.0]]
    with pytest.raises(UserError, match="validation=0.1"):
        create_method("mtt", **options).distill(digits, ipc=1, seed=0, progress=False)


def test_checkpoint_selection_resumes_with_its_best_state(digits, monkeypatch, tmp_path):
    import dd_bench.eval as eval_package
    from dd_bench.data.validation import split_validation
    from dd_bench.eval import EvalResult

    real, _ = split_validation(digits, fraction=0.1, seed=0)
    accuracies = {2: 50.0, 4: 80.0, 6: 60.0}  # by iteration: the curve both runs see

    def scripted(synset, *, real, protocol, models, seeds, progress):
        acc = accuracies[scripted.calls.pop(0)]
        return [EvalResult(model=models[0], protocol=protocol.name, protocol_version=1, seeds=seeds,
                           accuracies=[acc] * len(seeds), eval_seconds=0.0, peak_memory={}, lr=0.01, batched=False)]

    monkeypatch.setattr(eval_package, "evaluate", scripted)
    options = {**TINY, "iterations": 6, "eval_every": 2, "eval_epochs": 1, "eval_protocol": "quick",
               "checkpoint_every": 2}
    scripted.calls = [2, 4, 6]
    whole = create_method("mtt", **options).distill(real, ipc=1, seed=0, progress=False)
    scripted.calls = [2, 4]
    create_method("mtt", **{**options, "iterations": 4}).distill(real, ipc=1, seed=0, progress=False,
                                                                  checkpoint_dir=tmp_path)
    scripted.calls = [6]
    resumed = create_method("mtt", **options).distill(real, ipc=1, seed=0, progress=False, checkpoint_dir=tmp_path)
    assert resumed.provenance["distill_status"]["resumed_from"] == 4
    assert resumed.provenance["distill_status"]["selection"]["curve"] == [[2, 50.0], [4, 80.0], [6, 60.0]]
    assert torch.equal(resumed.images, whole.images) and resumed.learned_lr == whole.learned_lr


def test_paper_selection_reports_the_test_selected_score_apart(digits, tmp_path, capsys):
    """paper_selection: `run` hands the test split to the selector alone; the set stays the validation-selected one,
    and the record carries the test-selected checkpoint's score in its own column, shown on the leaderboard."""
    from dd_bench.app.cli import main
    from dd_bench.results import load_records

    tiny = [f"method.{k}={v}" for k, v in TINY.items()]
    args = ["run", "method=mtt", *tiny, "method.iterations=4", "method.eval_every=2", "method.eval_networks=1",
            "method.eval_protocol=quick", "method.eval_epochs=1", "method.eval_model=mlp",
            "method.paper_selection=true",
            "validation=0.2", "eval=quick", "eval.epochs=1", "models=[mlp]", "seeds=1", "references=[]",
            f"results={tmp_path}", "progress=false", "hydra.run.dir=" + str(tmp_path / "hydra")]
    assert main(args) == 0, capsys.readouterr()
    (rec,) = [r for r in load_records(tmp_path) if r.method == "mtt"]
    selection = rec.extra["distill_status"]["selection"]
    assert [p[0] for p in selection["curve"]] == [2, 4] and selection["split"] == "validation"
    assert [p[0] for p in selection["paper_selection"]["curve"]] == [2, 4]
    selected = rec.extra["acc_test_selected"]
    assert len(selected["accuracies"]) == 1 and selected["iteration"] in (2, 4) and "never ranked" in selected["note"]
    assert rec.storage["extras_bytes"] == 0  # the test-selected copy is not part of the set
    assert main(["leaderboard", f"results={tmp_path}"]) == 0
    assert "test-sel. %" in capsys.readouterr().out
    assert "test-selected % (not ranked)" in (tmp_path / "leaderboard.md").read_text()
    from dd_bench.errors import UserError

    with pytest.raises(UserError, match="paper_selection .* needs eval_every > 0"):
        create_method("mtt", **{**TINY, "paper_selection": True}).distill(digits, ipc=1, seed=0, progress=False)


def test_a_candidate_that_cannot_be_trained_is_no_candidate(digits, monkeypatch):
    """A check whose networks diverge (or whose learned lr went non-positive) shows None in the curve and is
    skipped; the run goes on and the best trainable candidate is the set."""
    import dd_bench.eval as eval_package
    from dd_bench.data.validation import split_validation
    from dd_bench.eval import EvalResult

    real, _ = split_validation(digits, fraction=0.1, seed=0)
    outcomes = iter([FloatingPointError("diverged"), 40.0, 30.0])

    def scripted(synset, *, real, protocol, models, seeds, progress):
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return [EvalResult(model=models[0], protocol=protocol.name, protocol_version=1, seeds=seeds,
                           accuracies=[outcome] * len(seeds), eval_seconds=0.0, peak_memory={}, lr=0.01,
                           batched=False)]

    monkeypatch.setattr(eval_package, "evaluate", scripted)
    options = {**TINY, "iterations": 6, "eval_every": 2, "eval_epochs": 1, "eval_protocol": "quick"}
    synset = create_method("mtt", **options).distill(real, ipc=1, seed=0, progress=False)
    selection = synset.provenance["distill_status"]["selection"]
    assert selection["curve"] == [[2, None], [4, 40.0], [6, 30.0]] and selection["best_iteration"] == 4
