"""Tests for cmrpipe.stats.table1: statistics checked against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cmrpipe.stats.table1 import (
    Variable,
    format_count_pct,
    format_mean_sd,
    format_p,
    p_marker,
    table1,
    table1_numbers,
)


def _value(tidy: pd.DataFrame, row: str, column: str, statistic: str) -> float:
    hit = tidy[(tidy.row == row) & (tidy.column == column) & (tidy.statistic == statistic)]
    assert len(hit) == 1, (row, column, statistic)
    return float(hit.value.iloc[0])


@pytest.fixture
def three_groups() -> pd.DataFrame:
    # group means 2, 3, 7; grand mean 4; each group's sum of squares about its mean is 2
    return pd.DataFrame({"arm": list("aaabbbccc"), "x_mm": [1., 2., 3., 2., 3., 4., 6., 7., 8.]})


def test_table1_numbers_anova_across_groups_matches_sums_of_squares(three_groups):
    # SSB = 3 * ((2-4)^2 + (3-4)^2 + (7-4)^2) = 42 on 2 df; SSW = 3 * 2 = 6 on 6 df; F = 21 / 1
    tidy = table1_numbers(three_groups, "arm", {"x_mm": "continuous"}, test="across_groups")
    assert _value(tidy, "x_mm", "p", "F") == pytest.approx(21.0)
    assert _value(tidy, "x_mm", "p", "p") == pytest.approx(stats.f.sf(21.0, 2, 6))


def test_table1_numbers_each_vs_rest_tests_group_against_complement(three_groups):
    # a = [1,2,3] (mean 2) vs rest [2,3,4,6,7,8] (mean 5), grand mean 4:
    # SSB = 3*4 + 6*1 = 18 on 1 df; SSW = 2 + 28 = 30 on 7 df; F = 18 / (30/7) = 4.2
    tidy = table1_numbers(three_groups, "arm", {"x_mm": "continuous"}, test="each_vs_rest")
    assert _value(tidy, "x_mm", "a", "F") == pytest.approx(4.2)
    assert _value(tidy, "x_mm", "a", "p") == pytest.approx(stats.f.sf(4.2, 1, 7))
    across = table1_numbers(three_groups, "arm", {"x_mm": "continuous"}, test="across_groups")
    assert _value(tidy, "x_mm", "a", "p") != pytest.approx(_value(across, "x_mm", "p", "p"))
    assert set(tidy[tidy.statistic == "p"].column) == {"a", "b", "c"}
    assert set(across[across.statistic == "p"].column) == {"p"}


def test_table1_numbers_overlapping_subcohorts_use_every_other_row_as_rest():
    # A = rows 0-2: [1,2,3] vs [4,5,6]: means 2, 5, grand 3.5; SSB = 13.5, SSW = 4 on 4 df; F = 13.5
    # B = rows 1-4: [2,3,4,5] vs [1,6]: both means 3.5, so F = 0 and p = 1
    df = pd.DataFrame({"x": [1., 2., 3., 4., 5., 6.],
                       "in_a": [True, True, True, False, False, False],
                       "in_b": [False, True, True, True, True, False]})
    tidy = table1_numbers(df, {"A": "in_a", "B": "in_b"}, {"x": "continuous"})
    assert _value(tidy, "x", "A", "F") == pytest.approx(13.5)
    assert _value(tidy, "x", "B", "F") == pytest.approx(0.0, abs=1e-12)
    assert _value(tidy, "x", "B", "p") == pytest.approx(1.0)
    assert _value(tidy, "N", "All", "n") == 6
    with pytest.raises(ValueError, match="overlap"):
        table1_numbers(df, {"A": "in_a", "B": "in_b"}, {"x": "continuous"}, test="across_groups")


@pytest.fixture
def two_by_two() -> pd.DataFrame:
    # treated: 10 yes, 10 no; control: 2 yes, 18 no
    return pd.DataFrame({"arm": ["treated"] * 20 + ["control"] * 20,
                         "event": [1] * 10 + [0] * 10 + [1] * 2 + [0] * 18})


def test_table1_numbers_chi2_2x2_matches_hand_statistic(two_by_two):
    # expected counts 6, 6 (yes) and 14, 14 (no); |O - E| = 4 in every cell
    pearson = 2 * 16 / 6 + 2 * 16 / 14  # = 160 / 21
    yates = 2 * 3.5**2 / 6 + 2 * 3.5**2 / 14  # (|O - E| - 1/2)^2 / E
    assert yates == pytest.approx(40 * (10 * 18 - 10 * 2 - 40 / 2) ** 2 / (12 * 28 * 20 * 20))
    var = [Variable("event", "binary")]
    for correction, expected in ((True, yates), (False, pearson)):
        tidy = table1_numbers(two_by_two, "arm", var, test="across_groups", yates=correction)
        assert _value(tidy, "event", "p", "chi2") == pytest.approx(expected)
        assert _value(tidy, "event", "p", "p") == pytest.approx(stats.chi2.sf(expected, 1))


def test_table1_numbers_counts_and_percentages(two_by_two):
    tidy = table1_numbers(two_by_two, "arm", [Variable("event", "binary", label="Event")])
    assert _value(tidy, "Event", "treated", "count") == 10
    assert _value(tidy, "Event", "control", "pct") == pytest.approx(10.0)
    assert _value(tidy, "Event", "All", "pct") == pytest.approx(100 * 12 / 40)


def test_table1_numbers_categorical_chi2_uses_all_levels():
    df = pd.DataFrame({"arm": ["a"] * 6 + ["b"] * 6,
                       "smoking": ["never"] * 4 + ["former", "current"] + ["never"] + ["former"] * 2 + ["current"] * 3})
    tidy = table1_numbers(df, "arm", [Variable("smoking", "categorical", levels=("never", "former", "current"))],
                          test="across_groups")
    expected = stats.chi2_contingency([[4, 1], [1, 2], [1, 3]], correction=False).statistic  # 3x2: no Yates
    assert _value(tidy, "smoking", "p", "chi2") == pytest.approx(expected)
    assert _value(tidy, "smoking: never", "a", "pct") == pytest.approx(100 * 4 / 6)


def test_table1_identical_groups_give_p_one():
    df = pd.DataFrame({"arm": ["a"] * 4 + ["b"] * 4, "x": [1., 2., 3., 4.] * 2, "y": [0, 1] * 4})
    tidy = table1_numbers(df, "arm", [Variable("x"), Variable("y", "binary")], test="across_groups")
    assert _value(tidy, "x", "p", "p") == pytest.approx(1.0)
    assert _value(tidy, "y", "p", "p") == pytest.approx(1.0)


def test_table1_separated_groups_give_tiny_p(rng):
    x = rng.normal(0.0, 1.0, 50)
    df = pd.DataFrame({"arm": ["a"] * 50 + ["b"] * 50, "x": np.r_[x, x + 100.0], "y": [1] * 50 + [0] * 50})
    tidy = table1_numbers(df, "arm", [Variable("x"), Variable("y", "binary")], test="across_groups")
    assert _value(tidy, "x", "p", "p") < 1e-30
    # Yates: 100 * (50*50 - 100/2)^2 / 50^4 = 96.04
    assert _value(tidy, "y", "p", "chi2") == pytest.approx(96.04)
    assert _value(tidy, "y", "p", "p") < 1e-20
    table = table1(df, "arm", [Variable("x")], overall=False)
    assert table.loc[("x", ""), "p (a vs rest)"] == "<0.001"
    assert table.loc[("x", ""), "a (N = 50)"].endswith(" #")


def test_format_functions_print_like_the_papers():
    assert format_mean_sd(61.54, 10.06) == "61.5 (10.1)"
    assert format_mean_sd(64.23, 7.51, 1, "paper_b") == "64.2 ± 7.5"
    assert format_mean_sd(5.0, np.nan) == "5.0 (NA)"
    assert format_count_pct(2622, 52.41) == "2622 (52.4)"
    assert format_count_pct(17183, 51.96, "paper_b") == "17,183 (52.0%)"
    assert format_count_pct(2847, 52.79, "paper_b") == "2847 (52.8%)"  # AMA: no comma below 10,000
    assert [format_p(p) for p in (0.0009, 0.001, 0.0416, 0.5)] == ["<0.001", "0.001", "0.042", "0.500"]
    assert format_p(0.00001, decimals=2) == "<0.01"
    assert [p_marker(p) for p in (0.0499, 0.0099, 0.00099, 0.05)] == ["*", "$", "#", ""]


def test_table1_layout_headers_and_decimals():
    df = pd.DataFrame({"set": ["Training"] * 3 + ["Holdout"] * 2, "sbp_mmhg": [130., 140., 150., 120., 130.],
                       "smoking": ["never", "current", "never", "former", "never"]})
    variables = [Variable("sbp_mmhg", label="SBP (mmHg)", decimals=0),
                 Variable("smoking", "categorical", label="Smoking", levels=("never", "former", "current"))]
    t = table1(df, "set", variables, groups=["Training", "Holdout"], style="paper_b", test=None)
    assert list(t.columns) == ["All (N = 5)", "Training (N = 3)", "Holdout (N = 2)"]
    assert list(t.index) == [("SBP (mmHg)", ""), ("Smoking", "never"), ("Smoking", "former"), ("Smoking", "current")]
    assert t.loc[("SBP (mmHg)", ""), "Training (N = 3)"] == "140 ± 10"
    assert t.loc[("Smoking", "never"), "Training (N = 3)"] == "2 (66.7%)"
    assert t.loc[("Smoking", "former"), "Training (N = 3)"] == "0 (0.0%)"


def test_table1_paper_a_markers_and_p_on_first_level_row(two_by_two):
    var = [Variable("event", "categorical", label="Event", levels=(1, 0))]
    t = table1(two_by_two, "arm", var, groups=["treated", "control"], overall="Cohort")
    p = stats.chi2.sf(40 * 140**2 / (12 * 28 * 20 * 20), 1)  # Yates 2x2, each arm vs the other
    assert 0.01 < p < 0.05  # chi2 = 5.83 on 1 df: p = 0.016
    assert t.loc[("Event", "1"), "treated (N = 20)"] == "10 (50.0) *"
    assert t.loc[("Event", "0"), "treated (N = 20)"] == "10 (50.0)"
    assert t.loc[("Event", "1"), "p (treated vs rest)"] == format_p(p)
    assert t.loc[("Event", "0"), "p (treated vs rest)"] == ""
    assert t.loc[("Event", "1"), "Cohort (N = 40)"] == "12 (30.0)"


def test_table1_reports_missing_values_and_excludes_them_from_percentages():
    df = pd.DataFrame({"arm": ["a"] * 4 + ["b"] * 4,
                       "age": [50., np.nan, 70., 60., 60., 60., 60., 60.],
                       "smoker": ["yes", "no", "yes", None, "no", "no", "no", "yes"]})
    variables = [Variable("age"), Variable("smoker", "binary", level="yes")]
    tidy = table1_numbers(df, "arm", variables)
    assert _value(tidy, "age", "a", "n_missing") == 1
    assert _value(tidy, "age", "a", "mean") == pytest.approx(60.0)
    assert _value(tidy, "age", "a", "sd") == pytest.approx(10.0)
    assert _value(tidy, "smoker", "a", "pct") == pytest.approx(100 * 2 / 3)
    t = table1(df, "arm", variables)
    assert t.loc[("age", "Missing"), "a (N = 4)"] == "1"
    assert t.loc[("age", "Missing"), "b (N = 4)"] == "0"
    assert t.loc[("smoker", ""), "a (N = 4)"].startswith("2 (66.7)")
    assert t.loc[("smoker", "Missing"), "All (N = 8)"] == "1"
    complete = table1(df.dropna(), "arm", variables)
    assert "Missing" not in complete.index.get_level_values("level")


def test_table1_leaves_data_unchanged(two_by_two):
    before = two_by_two.copy()
    table1(two_by_two, "arm", [Variable("event", "binary")])
    pd.testing.assert_frame_equal(two_by_two, before)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"group": "site"}, "'site'"),
    ({"variables": [Variable("weight_kg")]}, "'weight_kg'"),
    ({"groups": ["a", "nobody"]}, "'nobody'.*zero subjects"),
    ({"variables": [Variable("sex")]}, "continuous variable 'sex' is not numeric"),
    ({"variables": [Variable("sex", "binary")]}, "binary variable 'sex'"),
    ({"variables": [Variable("sex", "categorical", levels=("F",))]}, r"'sex'.*\['M'\]"),
    ({"test": "t-test"}, "'t-test'"),
    ({"style": "paper_c"}, "'paper_c'"),
    ({"overall": "a"}, "overall column 'a'"),
])
def test_table1_errors_name_the_culprit(kwargs, match):
    df = pd.DataFrame({"arm": ["a", "a", "b", "b"], "x": [1., 2., 3., 4.], "sex": ["F", "M", "F", "M"]})
    args = {"group": "arm", "variables": [Variable("x")]} | kwargs
    with pytest.raises(ValueError, match=match):
        table1(df, **args)


def test_table1_errors_on_group_without_rest_and_non_boolean_subcohort():
    df = pd.DataFrame({"arm": ["a"] * 3, "x": [1., 2., 3.], "in_a": [1, 1, 0]})
    with pytest.raises(ValueError, match="'a' holds every subject"):
        table1(df, "arm", [Variable("x")])
    with pytest.raises(ValueError, match="'in_a' must be boolean"):
        table1(df, {"A": "in_a"}, [Variable("x")])
    with pytest.raises(ValueError, match="kind 'ordinal'"):
        Variable("x", "ordinal")
