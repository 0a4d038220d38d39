"""Tests for cmrpipe.stats.agreement: a published Bland-Altman example and closed forms."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cmrpipe.stats.agreement import (  # noqa: E402
    agreement_table,
    bland_altman,
    bland_altman_axes,
    mae,
    paired_finite,
    pearson,
)

# Bland JM, Altman DG. Lancet 1986;i:307-10. Peak expiratory flow rate (l/min), first
# reading of each of 17 subjects with the Wright and the mini Wright meter.
WRIGHT_L_PER_MIN = np.array([494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267,
                             478, 178, 423, 427], dtype=float)
MINI_WRIGHT_L_PER_MIN = np.array([512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626,
                                  260, 477, 259, 350, 451], dtype=float)


def test_bland_altman_pefr_published_mean_and_sd():
    ba = bland_altman(WRIGHT_L_PER_MIN, MINI_WRIGHT_L_PER_MIN)
    assert ba["n"] == 17
    assert round(ba["mean_diff"], 1) == -2.1
    assert round(ba["sd_diff"], 1) == 38.8


def test_bland_altman_pefr_limits_of_agreement():
    ba = bland_altman(WRIGHT_L_PER_MIN, MINI_WRIGHT_L_PER_MIN)
    # sum of differences -36, so mean -36/17. Mean ± 1.96 SD gives -78.1 to 73.9, the
    # -78 to 74 l/min quoted for these data; mean ± 2 SD would give -79.6 to 75.4.
    assert ba["mean_diff"] == pytest.approx(-36 / 17)
    assert ba["loa_low"] == pytest.approx(ba["mean_diff"] - 1.96 * ba["sd_diff"])
    assert ba["loa_high"] == pytest.approx(ba["mean_diff"] + 1.96 * ba["sd_diff"])
    assert (round(ba["loa_low"]), round(ba["loa_high"])) == (-78, 74)
    assert ba["loa_low"] == pytest.approx(-78.10, abs=0.01)
    assert ba["loa_high"] == pytest.approx(73.86, abs=0.01)


def test_bland_altman_slope_matches_linregress_on_means():
    from scipy import stats

    ba = bland_altman(WRIGHT_L_PER_MIN, MINI_WRIGHT_L_PER_MIN)
    fit = stats.linregress((WRIGHT_L_PER_MIN + MINI_WRIGHT_L_PER_MIN) / 2,
                           WRIGHT_L_PER_MIN - MINI_WRIGHT_L_PER_MIN)
    assert ba["slope"] == pytest.approx(fit.slope)
    assert ba["slope_p"] == pytest.approx(fit.pvalue)


def test_bland_altman_proportional_error_gives_slope():
    # b = 0.8 a: differences 0.2 a, means 0.9 a, so slope exactly 0.2 / 0.9
    a = np.linspace(50.0, 250.0, 20)
    ba = bland_altman(a, 0.8 * a)
    assert ba["slope"] == pytest.approx(0.2 / 0.9)
    assert ba["slope_p"] < 1e-6


def test_bland_altman_identical_methods():
    a = np.array([3.0, 5.0, 8.0, 13.0])
    ba = bland_altman(a, a)
    assert ba["mean_diff"] == 0.0 and ba["sd_diff"] == 0.0
    assert ba["loa_low"] == 0.0 and ba["loa_high"] == 0.0
    assert ba["slope"] == pytest.approx(0.0)


def test_bland_altman_drops_nan_pairs():
    a = np.r_[WRIGHT_L_PER_MIN, np.nan, 300.0]
    b = np.r_[MINI_WRIGHT_L_PER_MIN, 250.0, np.nan]
    with_nan = bland_altman(a, b)
    clean = bland_altman(WRIGHT_L_PER_MIN, MINI_WRIGHT_L_PER_MIN)
    assert with_nan == pytest.approx(clean)
    assert with_nan["n"] == 17


@pytest.mark.parametrize("a, b, n", [([], [], 0), ([1.0], [2.0], 1),
                                     ([1.0, np.nan], [np.nan, 2.0], 0)])
def test_bland_altman_fewer_than_two_pairs_gives_nan(a, b, n):
    ba = bland_altman(a, b)
    assert ba["n"] == n
    assert all(np.isnan(ba[k]) for k in ba if k != "n")


def test_bland_altman_two_pairs_has_limits_but_no_slope():
    ba = bland_altman([1.0, 3.0], [0.0, 1.0])
    assert ba["mean_diff"] == 1.5
    assert ba["sd_diff"] == pytest.approx(np.sqrt(0.5))
    assert np.isnan(ba["slope"]) and np.isnan(ba["slope_p"])


def test_paired_finite_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        paired_finite([1.0, 2.0], [1.0])


def test_pearson_matches_numpy_corrcoef(rng):
    a = rng.normal(size=40)
    b = 0.5 * a + rng.normal(size=40)
    res = pearson(a, b)
    assert res["n"] == 40
    assert res["r"] == pytest.approx(np.corrcoef(a, b)[0, 1])
    assert 0.0 < res["p"] < 1.0


def test_pearson_drops_nan_pairs(rng):
    a = rng.normal(size=30)
    b = a + rng.normal(size=30)
    a_nan, b_nan = a.copy(), b.copy()
    a_nan[3], b_nan[7] = np.nan, np.nan
    keep = np.ones(30, bool)
    keep[[3, 7]] = False
    res = pearson(a_nan, b_nan)
    assert res["n"] == 28
    assert res["r"] == pytest.approx(np.corrcoef(a[keep], b[keep])[0, 1])


def test_pearson_perfect_line_is_one():
    assert pearson([1.0, 2.0, 3.0, 4.0], [3.0, 5.0, 7.0, 9.0])["r"] == pytest.approx(1.0)


@pytest.mark.parametrize("a, b", [([1.0, 2.0], [1.0, 2.0]), ([1.0, 2.0, 3.0], [4.0, 4.0, 4.0])])
def test_pearson_too_few_or_constant_gives_nan(a, b):
    res = pearson(a, b)
    assert res["n"] == len(a)
    assert np.isnan(res["r"]) and np.isnan(res["p"])


def test_mae_closed_form_and_empty():
    assert mae([1.0, 4.0, np.nan], [3.0, 1.0, 0.0]) == pytest.approx(2.5)
    assert np.isnan(mae([np.nan], [1.0]))


def test_agreement_table_rows_and_columns():
    table = agreement_table({
        "pefr_l_per_min": (WRIGHT_L_PER_MIN, MINI_WRIGHT_L_PER_MIN),
        "tiny_ml": ([1.0], [2.0]),
    })
    assert list(table.index) == ["pefr_l_per_min", "tiny_ml"]
    assert list(table.columns) == ["n", "r", "p", "mean_diff", "sd_diff", "loa_low",
                                   "loa_high", "slope", "slope_p", "mae"]
    row = table.loc["pefr_l_per_min"]
    assert row["n"] == 17
    assert row["mean_diff"] == pytest.approx(-36 / 17)
    assert row["r"] == pytest.approx(np.corrcoef(WRIGHT_L_PER_MIN, MINI_WRIGHT_L_PER_MIN)[0, 1])
    assert row["mae"] == pytest.approx(np.abs(WRIGHT_L_PER_MIN - MINI_WRIGHT_L_PER_MIN).mean())
    assert table.loc["tiny_ml", "n"] == 1
    assert table.loc["tiny_ml", ["r", "mean_diff", "sd_diff"]].isna().all()


def test_bland_altman_axes_draws_mean_and_limits():
    fig, ax = plt.subplots()
    try:
        ba = bland_altman_axes(ax, WRIGHT_L_PER_MIN, MINI_WRIGHT_L_PER_MIN, title="PEFR",
                               units="l/min")
        horizontal = [line for line in ax.get_lines()
                      if np.ptp(line.get_ydata()) == 0 and len(line.get_ydata()) == 2]
        assert len(horizontal) == 3
        levels = sorted(float(line.get_ydata()[0]) for line in horizontal)
        assert levels == pytest.approx([ba["loa_low"], ba["mean_diff"], ba["loa_high"]])
        styles = {float(line.get_ydata()[0]): line.get_linestyle() for line in horizontal}
        assert [styles[lv] for lv in levels] == ["--", "-", "--"]
        assert ax.get_xlabel() == "mean of the two (l/min)"
        assert ax.get_ylabel() == "difference (l/min)"
        assert ax.get_title() == "PEFR"
        assert len(ax.collections[0].get_offsets()) == 17
    finally:
        plt.close(fig)
