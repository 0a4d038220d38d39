"""cmrpipe.report.seg: Paper A Tables 3 and 4 beside the published values, the truth table, the figures."""

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from cmrpipe import segment
from cmrpipe.report import seg


def test_dice_statistics_and_table3():
    dice = pd.DataFrame({"key": "a", "phase": ["ED"] * 4 + ["ES"] * 4, "slice": range(8),
                         "dice_cavity": [0.9, 0.92, 0.94, np.nan, 0.8, 0.85, 0.9, 0.95],
                         "dice_myocardium": [0.8] * 8})
    stats = seg.dice_statistics(dice)
    assert stats.loc["Cavity ED", "n"] == 3 and stats.loc["Cavity ED", "median"] == pytest.approx(0.92)
    assert stats.loc["Cavity ES", "q1"] == pytest.approx(np.quantile([0.8, 0.85, 0.9, 0.95], 0.25))
    table = seg.table3(dice)
    assert table.loc["Cavity ED", ("Mean", "published")] == "0.93"
    assert table.loc["Myocardium ES", ("Std Dev", "reproduced")] == "0.00"
    assert table.loc["Cavity ED", ("Median", "reproduced")] == "0.92"


def measures_frame(n: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        row = {"key": f"k{i}", "seg_split": "test", "qc_pass": True, "es_frame": 8, "es_frame_auto": 8 + (i % 3 == 0)}
        for name in segment.MEASURE_NAMES:
            truth = rng.uniform(50, 150)
            row[f"truth_{name}"] = truth
            row[f"manual_{name}"] = truth + rng.normal(0, 2)
            row[f"auto_{name}"] = row[f"manual_{name}"] + 1.0  # a bias of exactly 1
            row[f"full_{name}"] = truth - 3.0
        rows.append(row)
    return pd.DataFrame(rows)


def test_table4_agreement_and_truth_columns():
    frame = measures_frame()
    truth = frame[["key"] + [f"truth_{n}" for n in segment.MEASURE_NAMES]].rename(
        columns=lambda c: c.replace("truth_", ""))
    measures = frame.drop(columns=[c for c in frame if c.startswith("truth_")])
    stats = seg.agreement(measures, "auto", "manual")
    assert stats.mean_diff.tolist() == pytest.approx([1.0] * 4) and stats.sd_diff.max() < 1e-9
    assert (stats.r > 0.99).all() and (stats.n == 12).all()
    table = seg.table4(measures, truth)
    assert table.loc["LVEDVi (ml/m2)", ("auto - manual, mean (SD)", "reproduced")] == "1.00 (0.0)"
    assert table.loc["LVEDVi (ml/m2)", ("r", "published")] == "0.98 (p<0.001)"
    assert ("auto - truth, mean (SD)", "synthetic truth") in table.columns
    full = seg.truth_table(measures, truth)
    assert full.loc["LVEDV (ml)", ("automated", "minus truth, mean (SD)")] == "-3.0 (0.0)"
    assert full.loc["LVEDV (ml)", ("automated", "MAE")] == "3.0"
    assert seg.es_agreement(measures).set_index("predicted ES - labelled ES (frames)").subjects.to_dict() == {0: 8, 1: 4}


def test_figures_draw(tmp_path):
    measures = measures_frame()
    assert len(seg.figure6(measures).axes) == 4
    history = pd.DataFrame({"epoch": [1, 2], "loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "dice_cavity": [0.3, 0.6],
                            "val_dice_cavity": [0.2, 0.5], "dice_myocardium": [0.1, 0.4],
                            "val_dice_myocardium": [0.1, 0.3]})
    assert len(seg.training_curves(history).axes) == 2


def test_figure5_picks_best_mean_and_worst():
    dice = pd.DataFrame({"key": list("abcd"), "phase": "ED", "slice": 0, "dice_cavity": [0.9, 0.5, 0.7, np.nan],
                         "dice_myocardium": [0.9, 0.5, 0.7, 0.6]})
    cases = seg.figure5_cases(dice)
    assert cases.case.tolist() == ["best", "mean", "worst"] and cases.key.tolist() == ["a", "c", "b"]
