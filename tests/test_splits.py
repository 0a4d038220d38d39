"""Tests of cmrpipe.splits: seeded per-subject splits with the papers' fractions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmrpipe import splits
from cmrpipe.splits import allocate, assign_splits, split_summary, subject_draws


def make_index(n_mesa: int, n_ukb: int, rng: np.random.Generator, p_excluded: float = 0.05,
               p_contours: float = 0.9, p_landmarks: float = 0.95, p_manual_mass: float = 0.5,
               p_inlinevf: float = 0.95) -> pd.DataFrame:
    """A synthetic subject index: keys mesa_00000.. and ukb_00000.., random flags."""
    n = n_mesa + n_ukb
    return pd.DataFrame({
        "key": [f"mesa_{i:05d}" for i in range(n_mesa)] + [f"ukb_{i:05d}" for i in range(n_ukb)],
        "protocol": ["mesa"] * n_mesa + ["ukb"] * n_ukb,
        "status": np.where(rng.random(n) < p_excluded, "excluded", "included"),
        "has_contours": (rng.random(n) < p_contours).astype(int),
        "has_landmarks": (rng.random(n) < p_landmarks).astype(int),
        "has_manual_mass": (rng.random(n) < p_manual_mass).astype(int),
        "has_inlinevf": (rng.random(n) < p_inlinevf).astype(int),
        "n_sax_slices": rng.integers(8, 13, n),
    })


def shares(values: pd.Series) -> dict[str, float]:
    values = values[values != ""]
    return (values.value_counts() / len(values)).to_dict()


def fractions_of(constant: dict[str, float]) -> dict[str, float]:
    total = sum(constant.values())
    return {name: f / total for name, f in constant.items()}


@pytest.fixture(scope="module")
def large() -> pd.DataFrame:
    """40,000 MESA and 20,000 UK Biobank subjects, split with seed 7.

    Big enough that every split fraction has a sampling SD under 0.35 percentage points
    (the segmentation split draws from the ~17,000 training-sub-cohort subjects with contours).
    """
    return assign_splits(make_index(40_000, 20_000, np.random.default_rng(1)), seed=7)


def test_constants_reproduce_paper_counts():
    assert round(splits.PAPER_A_SUBCOHORT["training"] * 5003) == 2529
    assert [round(f * 2379) for f in splits.PAPER_A_LANDMARK.values()] == [50, 232, 2097]
    assert [round(f * 5065) for f in splits.PAPER_B_MASS.values()] == [891, 996, 3178]
    # Table 1: the manual-mass and other subjects together give 33,071 training and 5,393 holdout
    holdout = splits.PAPER_B_MASS["holdout"] * 5065 + splits.PAPER_B_NO_MASS["holdout"] * 33_399
    assert holdout == pytest.approx(5393)
    for constant in (splits.PAPER_A_SUBCOHORT, splits.PAPER_A_LANDMARK, splits.PAPER_A_SEG,
                     splits.PAPER_B_MASS, splits.PAPER_B_NO_MASS):
        assert sum(constant.values()) == pytest.approx(1.0)


def test_subject_draws_depend_only_on_seed_purpose_and_key():
    keys = [f"ukb_{i:05d}" for i in range(20_000)]
    draws = subject_draws(keys, 3, "mass")
    assert np.array_equal(subject_draws(keys[::-1], 3, "mass"), draws[::-1])
    assert not np.array_equal(subject_draws(keys, 4, "mass"), draws)
    assert not np.array_equal(subject_draws(keys, 3, "seg"), draws)
    counts, _ = np.histogram(draws, bins=10, range=(0, 1))
    assert np.all(np.abs(counts / len(keys) - 0.1) < 0.01)


def test_allocate_uses_cumulative_fractions():
    fractions = {"test": 0.1, "validation": 0.1, "train": 0.8}
    got = allocate([0.0, 0.09, 0.1, 0.19, 0.2, 0.999], fractions, min_eligible=100)
    assert got.tolist() == ["test", "test", "validation", "validation", "train", "train"]


def test_allocate_tops_up_short_splits_from_the_largest():
    draws = np.linspace(0.3, 0.99, 12)  # no draw below 0.2: test and validation start empty
    got = allocate(draws, {"test": 0.1, "validation": 0.1, "train": 0.8})
    assert {name: got.tolist().count(name) for name in set(got)} == {"test": 2, "validation": 2, "train": 8}
    assert got[:4].tolist() == ["test", "test", "validation", "validation"]  # nearest draws moved


def test_allocate_leaves_small_groups_alone():
    draws = np.linspace(0.3, 0.99, 9)  # fewer than MIN_ELIGIBLE
    assert set(allocate(draws, {"test": 0.1, "train": 0.9})) == {"train"}


def test_assign_splits_deterministic_for_a_seed(rng):
    index = make_index(300, 300, rng)
    first, again = assign_splits(index, seed=11), assign_splits(index, seed=11)
    pd.testing.assert_frame_equal(first, again)
    other = assign_splits(index, seed=12)
    assert not first["subcohort"].equals(other["subcohort"])


def test_assign_splits_ignores_row_order(rng):
    index = make_index(300, 300, rng)
    shuffled = index.sample(frac=1.0, random_state=5)
    columns = list(splits.SPLIT_COLUMNS)
    pd.testing.assert_frame_equal(assign_splits(index, 2).set_index("key")[columns].sort_index(),
                                  assign_splits(shuffled, 2).set_index("key")[columns].sort_index())


def test_assign_splits_stable_when_subjects_added_or_removed(rng):
    index = make_index(6000, 6000, rng)
    full = assign_splits(index, 5).set_index("key")
    fewer = index.drop(index.index[1::3])  # a third of the subjects removed
    part = assign_splits(fewer, 5).set_index("key")
    columns = list(splits.SPLIT_COLUMNS)
    pd.testing.assert_frame_equal(part[columns], full.loc[part.index, columns])


def test_assign_splits_proportions_match_paper_a(large):
    mesa = large[large["protocol"] == "mesa"]
    for column, constant in (("subcohort", splits.PAPER_A_SUBCOHORT), ("landmark_split", splits.PAPER_A_LANDMARK),
                             ("seg_split", splits.PAPER_A_SEG)):
        got = shares(mesa[column])
        for name, fraction in fractions_of(constant).items():
            assert got[name] == pytest.approx(fraction, abs=0.01), (column, name)


def test_assign_splits_proportions_match_paper_b(large):
    ukb = large[large["protocol"] == "ukb"]
    mass = ukb["has_manual_mass"] == 1
    for name, fraction in fractions_of(splits.PAPER_B_MASS).items():
        assert shares(ukb["mass_split"])[name] == pytest.approx(fraction, abs=0.01), name
    others = shares(ukb.loc[~mass, "cohort_split"])
    assert others["holdout"] == pytest.approx(4502 / 33_399, abs=0.01)


def test_assign_splits_paper_b_cohort_gives_table1_split():
    """A UK Biobank cohort of the paper's size: 38,464 subjects, 5,065 with manual mass."""
    n = 38_464
    index = make_index(0, n, np.random.default_rng(3), p_excluded=0.0)
    index["has_manual_mass"] = (np.arange(n) < 5065).astype(int)
    got = shares(assign_splits(index, 1)["cohort_split"])
    assert got["train"] == pytest.approx(33_071 / n, abs=0.01)
    assert got["holdout"] == pytest.approx(5393 / n, abs=0.01)


def test_assign_splits_minimum_counts_on_small_cohort(rng):
    index = make_index(40, 30, rng, p_excluded=0.0, p_contours=1.0, p_landmarks=1.0, p_manual_mass=1.0)
    got = assign_splits(index, 9)
    training = got["subcohort"] == "training"
    assert training.sum() >= splits.MIN_ELIGIBLE  # 40 subjects: each sub-cohort well over 10
    for column in ("subcohort", "landmark_split", "seg_split", "mass_split"):
        counts = got.loc[got[column] != "", column].value_counts()
        assert counts.min() >= splits.MIN_PER_SPLIT, column
    assert set(got.loc[training, "landmark_split"]) == {"train", "validation", "test"}
    assert set(got.loc[got["protocol"] == "ukb", "mass_split"]) == {"train", "validation", "holdout"}


def test_assign_splits_never_splits_excluded_subjects(large):
    excluded = large[large["status"] == "excluded"]
    assert len(excluded) > 0
    assert (excluded[list(splits.SPLIT_COLUMNS)] == "").all().all()


def test_assign_splits_eligibility_and_disjointness(large):
    mesa, ukb = large["protocol"] == "mesa", large["protocol"] == "ukb"
    included = large["status"] == "included"
    training, atlas = large["subcohort"] == "training", large["subcohort"] == "atlas_validation"
    assert not (training & atlas).any() and ((training | atlas) == (mesa & included)).all()
    assert ((large["landmark_split"] != "") == (training & (large["has_landmarks"] == 1))).all()
    assert ((large.loc[mesa, "seg_split"] != "") == (training & (large["has_contours"] == 1))[mesa]).all()
    assert (large.loc[ukb, ["subcohort", "landmark_split"]] == "").all().all()
    assert (large.loc[mesa, ["mass_split", "cohort_split"]] == "").all().all()
    assert ((large["mass_split"] != "") == (ukb & included & (large["has_manual_mass"] == 1))).all()
    assert ((large["cohort_split"] != "") == (ukb & included)).all()
    mass = large[large["mass_split"] != ""]
    assert (mass["cohort_split"] == np.where(mass["mass_split"] == "holdout", "holdout", "train")).all()
    inlinevf = ukb & included & (large["has_inlinevf"] == 1)
    assert (large.loc[inlinevf, "seg_split"] == large.loc[inlinevf, "cohort_split"]).all()
    assert (large.loc[ukb & ~inlinevf, "seg_split"] == "").all()


def test_assign_splits_keeps_input_unchanged(rng):
    index = make_index(50, 50, rng)
    before = index.copy()
    got = assign_splits(index, 0)
    pd.testing.assert_frame_equal(index, before)
    assert list(got.columns) == list(index.columns) + list(splits.SPLIT_COLUMNS)


def test_assign_splits_rejects_bad_index(rng):
    index = make_index(5, 5, rng)
    with pytest.raises(ValueError, match="has_inlinevf"):
        assign_splits(index.drop(columns="has_inlinevf"), 0)
    with pytest.raises(ValueError, match="mesa_00000"):
        assign_splits(pd.concat([index, index.iloc[:1]]), 0)


def test_split_summary_counts_match_columns(rng, tmp_path):
    got = assign_splits(make_index(500, 500, rng), 4)
    path = tmp_path / "index.csv"
    got.to_csv(path, index=False)
    for table in (got, pd.read_csv(path)):  # empty cells come back from CSV as NaN
        summary = split_summary(table)
        for row in summary.itertuples():
            rows = got[(got["protocol"] == row.protocol) & (got[row.split_column] == row.split)]
            assert row.n_subjects == len(rows)
        totals = summary.groupby(["protocol", "split_column"])["share_pct"].sum()
        assert np.allclose(totals, 100.0)
        assert summary.loc[summary["split_column"] == "subcohort", "n_subjects"].sum() == (
            (got["protocol"] == "mesa") & (got["status"] == "included")).sum()


def test_split_summary_empty_index():
    summary = split_summary(pd.DataFrame({"protocol": [], "mass_split": []}))
    assert summary.empty
    assert list(summary.columns) == ["protocol", "split_column", "split", "n_subjects", "share_pct"]
