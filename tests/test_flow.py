"""Tests of cmrpipe.report.flow: every count in the cohort flow figures comes from the tables."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from cmrpipe.report.flow import (MAX_REASON_LINES, excluded_text, exclusions_summary, paper_a_flow,
                                 paper_b_flow)
from cmrpipe.splits import assign_splits

REASONS = [("checksum", "checksum does not match the manifest"), ("ingest", "no short-axis series"),
           ("geometry", "slice gap differs from slice thickness"), ("labels", "contours misaligned with images"),
           ("qc", "fewer than 6 short-axis slices")]


def make_tables(n_per_protocol: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A split subject index and its exclusions table (one row per excluded subject)."""
    n = 2 * n_per_protocol
    index = pd.DataFrame({
        "key": [f"{p}_{i:05d}" for p in ("mesa", "ukb") for i in range(n_per_protocol)],
        "protocol": ["mesa"] * n_per_protocol + ["ukb"] * n_per_protocol,
        "status": np.where(rng.random(n) < 0.04, "excluded", "included"),
        "has_contours": (rng.random(n) < 0.6).astype(int),
        "has_landmarks": (rng.random(n) < 0.9).astype(int),
        "has_manual_mass": (rng.random(n) < 0.15).astype(int),
        "has_inlinevf": (rng.random(n) < 0.95).astype(int),
    })
    excluded = index[index["status"] == "excluded"]
    picks = rng.integers(0, len(REASONS), len(excluded))
    exclusions = pd.DataFrame({"key": excluded["key"].to_numpy(), "protocol": excluded["protocol"].to_numpy(),
                               "stage": [REASONS[i][0] for i in picks], "file": "series/0001.dcm",
                               "reason": [REASONS[i][1] for i in picks]})
    return assign_splits(index, seed=3), exclusions


@pytest.fixture
def tables(rng):
    return make_tables(3000, rng)


@pytest.fixture
def figures():
    made = []
    yield made
    for fig in made:
        plt.close(fig)


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts if t.get_text()]


def box(fig, first_line: str) -> str:
    """The one box whose text starts with ``first_line``."""
    found = [t for t in texts(fig) if t.split("\n")[0] == first_line]
    assert len(found) == 1, (first_line, texts(fig))
    return found[0]


def n_text(count) -> str:
    return f"N = {int(count):,}"


def test_exclusions_summary_counts(tables):
    _, exclusions = tables
    summary = exclusions_summary(exclusions)
    assert summary["n_subjects"].sum() == len(exclusions)
    expected = exclusions.groupby(["protocol", "stage", "reason"]).size()
    got = summary.set_index(["protocol", "stage", "reason"])["n_subjects"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False)
    for _, part in summary.groupby("protocol"):
        assert part["n_subjects"].is_monotonic_decreasing


@pytest.mark.parametrize("empty", [None, pd.DataFrame(columns=["key", "protocol", "stage", "file", "reason"]),
                                   pd.DataFrame()])
def test_exclusions_summary_empty(empty):
    summary = exclusions_summary(empty)
    assert summary.empty and list(summary.columns) == ["protocol", "stage", "reason", "n_subjects"]


def test_exclusions_summary_rejects_missing_columns():
    with pytest.raises(ValueError, match="reason"):
        exclusions_summary(pd.DataFrame({"key": ["a"], "protocol": ["mesa"], "stage": ["qc"]}))


def test_paper_a_flow_boxes_hold_index_counts(tables, figures):
    index, exclusions = tables
    figures.append(fig := paper_a_flow(index, exclusions))
    mesa = index[index["protocol"] == "mesa"]
    assert n_text(len(mesa)) in box(fig, "MESA CMR cases")
    assert n_text((mesa["status"] == "included").sum()) in box(fig, "Included")
    assert n_text((mesa["subcohort"] == "training").sum()) in box(fig, "Training sub-cohort")
    assert n_text((mesa["subcohort"] == "atlas_validation").sum()) in box(fig, "Atlas Validation sub-cohort")
    assert n_text((mesa["landmark_split"] != "").sum()) in box(fig, "Landmark detection")
    assert n_text((mesa["seg_split"] != "").sum()) in box(fig, "Segmentation")
    atlas = mesa[(mesa["subcohort"] == "atlas_validation") & (mesa["has_contours"] == 1) & (mesa["has_landmarks"] == 1)]
    assert n_text(len(atlas)) in box(fig, "Atlas evaluation")
    leaves = [t for t in texts(fig) if t.startswith(("Training\n", "Validation\n", "Test\n"))]
    expected = [n_text((mesa[column] == split).sum()) for column in ("landmark_split", "seg_split")
                for split in ("train", "validation", "test")]
    assert sorted(t.split("\n")[-1] for t in leaves) == sorted(expected)
    assert len(mesa) > 1000  # so the thousands separator is exercised


def test_paper_a_flow_excluded_box_counts_reasons(tables, figures):
    index, exclusions = tables
    figures.append(fig := paper_a_flow(index, exclusions))
    text = box(fig, "Excluded")
    mesa = exclusions[exclusions["protocol"] == "mesa"]
    assert text.split("\n")[1] == n_text(len(mesa))
    for (stage, reason), n in mesa.groupby(["stage", "reason"]).size().items():
        assert f"{stage}: {reason} ({n:,})" in text


def test_paper_b_flow_boxes_hold_index_counts(tables, figures):
    index, exclusions = tables
    figures.append(fig := paper_b_flow(index, exclusions))
    ukb = index[index["protocol"] == "ukb"]
    assert n_text(len(ukb)) in box(fig, "UK Biobank CMR")
    assert n_text((ukb["status"] == "included").sum()) in box(fig, "Included")
    assert n_text((ukb["has_manual_mass"].eq(1) & ukb["status"].eq("included")).sum()) in box(
        fig, "With manual LV mass")
    assert n_text((ukb["has_inlinevf"].eq(1) & ukb["status"].eq("included")).sum()) in box(
        fig, "With InlineVF contours")
    assert n_text((ukb["mass_split"] == "train").sum()) in box(fig, "ML4H_reg training")
    assert n_text((ukb["mass_split"] == "validation").sum()) in box(fig, "Validation")
    assert n_text((ukb["seg_split"] == "train").sum()) in box(fig, "ML4H_seg training set")
    holdouts = sorted(t.split("\n")[1] for t in texts(fig) if t.startswith("Holdout\n"))
    assert holdouts == sorted(n_text((ukb[c] == "holdout").sum()) for c in ("mass_split", "seg_split"))
    footer = [t for t in texts(fig) if t.startswith("Table 1")][0]
    assert f"training set {n_text((ukb['cohort_split'] == 'train').sum())}" in footer
    assert f"holdout set {n_text((ukb['cohort_split'] == 'holdout').sum())}" in footer
    assert "\n".join(box(fig, "Excluded").split("\n")[:2]) == f"Excluded\n{n_text((ukb['status'] == 'excluded').sum())}"


@pytest.mark.parametrize("draw", [paper_a_flow, paper_b_flow])
@pytest.mark.parametrize("empty", [None, pd.DataFrame(columns=["key", "protocol", "stage", "file", "reason"])])
def test_flow_handles_empty_exclusions(rng, figures, draw, empty):
    index, _ = make_tables(40, rng)
    index = assign_splits(index.assign(status="included"), seed=3)
    figures.append(fig := draw(index, empty))
    assert box(fig, "Excluded") == "Excluded\nN = 0"


def test_excluded_text_counts_unrecorded_and_surplus_reasons(rng):
    index, exclusions = make_tables(400, rng)
    mesa_excluded = index[(index["protocol"] == "mesa") & (index["status"] == "excluded")]
    assert len(mesa_excluded) > MAX_REASON_LINES + 3
    many = exclusions[exclusions["key"].isin(mesa_excluded["key"].iloc[3:])].copy()
    many["reason"] = [f"reason number {i}" for i in range(len(many))]  # more reasons than lines
    text = excluded_text(index, many, "mesa").split("\n")
    assert text[:2] == ["Excluded", n_text(len(mesa_excluded))]
    assert text[-1] == "no reason recorded (3)"
    assert text[-2] == f"other reasons ({len(many) - MAX_REASON_LINES})"
    counts = [int(line.rsplit("(", 1)[1].rstrip(")").replace(",", "")) for line in text[2:]]
    assert sum(counts) == len(mesa_excluded)


def test_flow_reads_index_back_from_csv(tables, figures, tmp_path):
    index, exclusions = tables
    index.to_csv(tmp_path / "index.csv", index=False)
    exclusions.to_csv(tmp_path / "exclusions.csv", index=False)
    back, back_ex = pd.read_csv(tmp_path / "index.csv"), pd.read_csv(tmp_path / "exclusions.csv")
    for draw in (paper_a_flow, paper_b_flow):
        figures.append(fig := draw(back, back_ex))
        figures.append(same := draw(index, exclusions))
        assert texts(fig) == texts(same)


def test_flow_requires_splits(tables):
    index, exclusions = tables
    with pytest.raises(ValueError, match="assign_splits"):
        paper_a_flow(index.drop(columns="subcohort"), exclusions)
    with pytest.raises(ValueError, match="assign_splits"):
        paper_b_flow(index.drop(columns="mass_split"), exclusions)
