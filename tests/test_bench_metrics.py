"""Metric functions of `benchmark.metrics` against cases worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.metrics import (
    accuracy, balanced_accuracy, band_accuracy, band_of, classification_metrics, confusion, mean_std, per_class,
    roc_auc, wilson_ci,
)


def test_confusion_accuracy_and_per_class_by_hand():
    # truth:  0 0 0 0 1 1 1 1 1 1
    # pred:   0 0 0 1 1 1 1 1 0 0   -> class 0: 3 right, 1 as 1; class 1: 4 right, 2 as 0
    y = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    p = [0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    cm = confusion(y, p)
    assert cm.tolist() == [[3, 1], [2, 4]]
    assert accuracy(y, p) == pytest.approx(0.7)
    c0, c1 = per_class(y, p)
    assert c0["precision"] == pytest.approx(3 / 5) and c0["recall"] == pytest.approx(3 / 4)
    assert c0["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert c1["precision"] == pytest.approx(4 / 5) and c1["recall"] == pytest.approx(4 / 6)
    assert (c0["support"], c1["support"]) == (4, 6)
    assert balanced_accuracy(y, p) == pytest.approx((3 / 4 + 4 / 6) / 2)


def test_per_class_with_a_class_never_predicted_is_zero_not_nan():
    c0, c1 = per_class([0, 1, 1], [1, 1, 1])
    assert c0 == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert c1["precision"] == pytest.approx(2 / 3) and c1["recall"] == 1.0


def test_roc_auc_by_hand_with_a_tie():
    # positives score 0.9, 0.4; negatives 0.4, 0.1. Pairs: (0.9>0.4) 1, (0.9>0.1) 1, (0.4=0.4) 1/2, (0.4>0.1) 1 -> 3.5/4
    assert roc_auc([1, 1, 0, 0], [0.9, 0.4, 0.4, 0.1]) == pytest.approx(0.875)
    assert roc_auc([1, 0], [0.2, 0.8]) == 0.0
    assert roc_auc([1, 1], [0.2, 0.8]) != roc_auc([1, 1], [0.2, 0.8])  # one class only: NaN


def test_roc_auc_matches_scikit_learn_on_random_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.random(200), 2)  # rounding makes ties
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_wilson_interval_by_hand_and_the_thesis_example():
    lo, hi = wilson_ci(0, 10)  # p=0: center = half = (z^2/2n)/(1+z^2/n) = 0.19208/1.38416
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_ci(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    # THESIS.md: "a 95% interval around 99.1% on 320 images is about [97.3%, 99.7%]" (317/320)
    lo, hi = wilson_ci(317, 320)
    assert (round(lo, 3), round(hi, 3)) == (0.973, 0.997)
    assert all(math.isnan(v) for v in wilson_ci(0, 0))


def test_mean_std_is_the_sample_std():
    assert mean_std([0.9, 0.8, 0.7]) == (pytest.approx(0.8), pytest.approx(0.1))
    assert mean_std([0.5]) == (0.5, 0.0)
    assert mean_std([0.5, float("nan")]) == (0.5, 0.0)


def test_face_bands_edges_and_band_accuracy():
    # The bench rows and `lrfp stats` share lrfp.bands: a 64 px face is in 64-128 in both (it was 48-64 here).
    assert [band_of(x) for x in (10, 23, 24, 31, 32, 47, 48, 63, 64, 127, 128, 200)] == [
        "<24", "<24", "24-32", "24-32", "32-48", "32-48", "48-64", "48-64", "64-128", "64-128", ">=128", ">=128"]
    bands = band_accuracy([20, 22, 30, 63, 64, 100, 300], [0, 1, 1, 0, 0, 0, 1], [0, 0, 1, 0, 1, 0, 1])
    assert bands["<24"] == (0.5, 2) and bands["24-32"] == (1.0, 1) and bands["48-64"] == (1.0, 1)
    assert bands["64-128"] == (0.5, 2) and bands[">=128"] == (1.0, 1)
    assert math.isnan(bands["32-48"][0]) and bands["32-48"][1] == 0


def test_classification_metrics_row():
    prob = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    row = classification_metrics([0, 1, 1, 1], prob, [0.1, 0.2, 0.9, 0.4], [20, 30, 40, 50], ("with_mask", "without_mask"))
    assert row["accuracy"] == 0.75 and row["correct"] == 3 and row["n"] == 4
    assert row["loss"] == pytest.approx(0.4)
    assert row["cm_without_mask_as_with_mask"] == 1 and row["cm_with_mask_as_with_mask"] == 1
    assert row["recall_without_mask"] == pytest.approx(2 / 3) and row["precision_with_mask"] == 0.5
    assert row["roc_auc"] == 1.0  # every positive scores above the negative even though one is misclassified
    assert (row["acc_ci_low"], row["acc_ci_high"]) == wilson_ci(3, 4)
    assert row["acc_face_32-48"] == 0.0 and row["n_face_<24"] == 1


def test_stats_and_bench_put_a_face_in_the_same_band():
    """One rule (lrfp.bands): 64 px used to be 64-128 in `lrfp stats` and 48-64 in the bench (issue 11)."""
    from lrfp.bands import face_band
    from lrfp.stats import collect_stats  # noqa: F401 - stats counts with face_band

    assert band_of(64) == face_band(64) == "64-128"
    assert [band_of(x) for x in range(0, 300)] == [face_band(x) for x in range(0, 300)]


def _wilson_by_its_definition(p: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's interval as the two p where (p_hat - p)^2 = z^2 p (1 - p) / n: the roots of a quadratic."""
    lo, hi = sorted(np.roots([1 + z * z / n, -(2 * p + z * z / n), p * p]).real)
    return lo, hi


def test_wilson_ci_equals_scipy_for_whole_counts():
    from scipy.stats import binomtest

    for k, n in [(0, 10), (3, 10), (10, 10), (38, 48), (44, 48), (317, 320), (1, 1)]:
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert wilson_ci(k, n) == (pytest.approx(ci.low, abs=1e-12), pytest.approx(ci.high, abs=1e-12))


def test_the_interval_beside_a_mean_over_seeds_is_wilsons_at_that_mean():
    """Tester's report: 80.21% (38.5/48, the mean of two seeds) was shown with 79.17%'s interval [65.7, 88.3] and
    90.62% (43.5/48) with 44/48's, because round() rounds half to even. The interval shown must be the
    documented one: Wilson's at the mean accuracy shown, on the 48 test images."""
    from benchmark.report import render_markdown, summarize

    def row(config, seed, correct):
        return {"eval_set": "test", "model": config, "norm": "", "config": config, "epochs": 3, "seed": seed,
                "n": 48, "correct": correct, "accuracy": correct / 48, "loss": 0.5, "balanced_accuracy": 0.5,
                "roc_auc": 0.5}

    rows = [row("model3", 0, 38), row("model3", 1, 39), row("vgg16", 0, 43), row("vgg16", 1, 44)]
    md = render_markdown(rows, {"protocol": "quick", "run_epochs": 3, "run_budgets": [3], "run_seeds": 2})
    for s, mean, rounded in zip(summarize(rows), (38.5 / 48, 43.5 / 48), ((38, 48), (44, 48))):
        assert s["accuracy"] == pytest.approx(mean)
        lo, hi = _wilson_by_its_definition(mean, 48)
        assert (s["acc_ci_low"], s["acc_ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
        assert s["acc_ci_low"] < mean < s["acc_ci_high"]
        assert (s["acc_ci_low"], s["acc_ci_high"]) != pytest.approx(wilson_ci(*rounded))  # not the rounded count's
        shown = f"| {100 * mean:.2f}% ± {100 * s['accuracy_sd']:.2f} | [{100 * lo:.1f}, {100 * hi:.1f}] |"
        assert shown in md
    assert "| 80.21% ± 1.47 | [66.9, 89.0] |" in md and "[65.7, 88.3]" not in md
    assert "Wilson's at that mean accuracy on this test set's size" in " ".join(md.split())


def test_the_thesis_interval_is_the_one_of_the_accuracy_it_reports():
    """The thesis's 94.56% (Model 2, BatchNorm, 80 epochs) is no whole count of 320 (302.6): its interval is
    Wilson's at 94.56%, not at 303/320 = 94.69%."""
    from benchmark.thesis import thesis_comparison

    th = thesis_comparison("model2", "bn", 80, [30, 50, 80])
    lo, hi = _wilson_by_its_definition(0.9456, 320)
    assert th["thesis_accuracy"] == 0.9456
    assert (th["thesis_ci_low"], th["thesis_ci_high"]) == (pytest.approx(lo), pytest.approx(hi))


def test_wilson_ci_of_a_mean_count_at_the_ends_and_out_of_range():
    """A mean of seeds' accuracies times n can miss 0 or n by a rounding error: still that end's interval."""
    all_right = float(np.mean([48 / 48] * 3)) * 48
    assert wilson_ci(all_right, 48) == wilson_ci(48, 48) and wilson_ci(48, 48)[1] == 1.0
    assert wilson_ci(0.0, 48)[0] == 0.0
    with pytest.raises(ValueError, match="0 <= k <= n, not k=11, n=10"):
        wilson_ci(11, 10)
