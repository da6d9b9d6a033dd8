"""DD-Ranking's robust scores (benchmark-suites.md §3.2-3.3) on fractions: hand-computed values, the [0, 1] range,
and ``scores=[lrs,ars]`` end to end (records written, inputs referenced, shown on the leaderboard)."""

from __future__ import annotations

import math

import pytest

from dd_bench.errors import UserError
from dd_bench.eval.robust_scores import augmentation_robust_score, label_robust_score


def test_lrs_by_hand():
    # HLR = 0.90 - 0.40 = 0.50; IOR = 0.60 - 0.45 = 0.15; alpha = 0.5 * 0.15 - 0.5 * 0.50 = -0.175
    s = label_robust_score(real_hard=0.90, syn_hard=0.40, syn_own=0.60, random_own=0.45)
    assert s["hlr"] == pytest.approx(0.50) and s["ior"] == pytest.approx(0.15)
    assert s["alpha"] == pytest.approx(-0.175)
    assert s["lrs"] == pytest.approx((math.exp(-0.175) - math.exp(-1)) / (math.e - math.exp(-1)))
    assert s["lrs"] == pytest.approx(0.2006, abs=1e-4)  # (0.83946 - 0.36788) / (2.71828 - 0.36788)


def test_ars_by_hand():
    # beta = 0.5 * (0.70 - 0.50) + 0.5 * (0.55 - 0.45) = 0.15
    s = augmentation_robust_score(syn_aug=0.70, random_aug=0.50, syn_no_aug=0.55, random_no_aug=0.45)
    assert s["beta"] == pytest.approx(0.15)
    assert s["ars"] == pytest.approx((math.exp(0.15) - math.exp(-1)) / (math.e - math.exp(-1)))


def test_both_stay_in_0_1_on_fractions_and_refuse_percent():
    extremes = [label_robust_score(real_hard=r, syn_hard=h, syn_own=o, random_own=d)["lrs"]
                for r in (0, 1) for h in (0, 1) for o in (0, 1) for d in (0, 1)]
    assert min(extremes) >= 0.0 and max(extremes) <= 1.0
    assert label_robust_score(real_hard=1, syn_hard=0, syn_own=0, random_own=1)["lrs"] == pytest.approx(0.0)
    assert augmentation_robust_score(syn_aug=1, random_aug=0, syn_no_aug=1, random_no_aug=0)["ars"] == \
        pytest.approx(1.0)
    with pytest.raises(ValueError, match="fraction"):
        label_robust_score(real_hard=90.0, syn_hard=40.0, syn_own=60.0, random_own=45.0)


def test_scores_end_to_end(compose_cfg):
    from dd_bench.app.tasks import run
    from dd_bench.results import build_leaderboard, format_leaderboard_text

    cfg = compose_cfg("task=run", "method=random", "ipc=1", "seeds=1", "models=[mlp]", "eval=quick",
                      "eval.epochs=3", "scores=[lrs,ars]")
    result = run(cfg)
    from dd_bench.results import RunRecord

    records = [RunRecord.from_dict(r) for r in result["records"]]
    own = next(r for r in records if r.kind == "evaluation" and r.extra.get("robust_scores"))
    scores = own.extra["robust_scores"]
    lrs, ars = scores["lrs"], scores["ars"]
    assert 0 <= lrs["lrs"] <= 1 and 0 <= ars["ars"] <= 1
    assert lrs["inputs"]["syn_own"] == pytest.approx(sum(own.accuracies) / len(own.accuracies) / 100)
    # A random set with hard labels under its own protocol: its hard-label accuracy is its own.
    assert lrs["inputs"]["syn_hard"] == lrs["inputs"]["syn_own"]
    assert ars["no_augmentation_protocol"]["augment"] == "none" and scores["random_labels"] == "hard"
    board = build_leaderboard(records)
    assert board["lrs"].notna().sum() == 1 and "LRS" in format_leaderboard_text(board)
    with pytest.raises(UserError, match="Unknown score"):
        run(compose_cfg("task=run", "method=random", "scores=[drs]"))


def test_kd_scores_compare_with_random_subsets_under_the_same_teacher(compose_cfg):
    from dd_bench.app.tasks import run
    from dd_bench.results import RunRecord

    cfg = compose_cfg("task=run", "method=rded", "method.mipc=20", "method.num_crop=2", "ipc=1", "seeds=1",
                      "models=[mlp]", "eval=kd-quick", "eval.epochs=2", "scores=[lrs,ars]")
    records = [RunRecord.from_dict(r) for r in run(cfg)["records"]]
    own = next(r for r in records if r.extra.get("robust_scores"))
    scores = own.extra["robust_scores"]
    assert scores["random_labels"] == "teacher" and own.storage["label_source"] == "teacher"
    assert scores["ars"]["no_augmentation_protocol"]["crop"] == "none"
    assert scores["ars"]["no_augmentation_protocol"]["mix"] == "none"
