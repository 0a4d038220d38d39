"""Chapter 03's tables and figures: Paper A Table 3 (Dice), Table 4 (agreement), Figures 5 and 6, training curves.

Every reproduced table stands beside the published one (:mod:`cmrpipe.report.published`)
and, for a synthetic cohort, beside the truth.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cmrpipe.io.labels import CAVITY, MYOCARDIUM
from cmrpipe.io.store import load_subject
from cmrpipe.report import published
from cmrpipe.report.cohort import heart_window, outline, show_image
from cmrpipe.stats.agreement import agreement_table, bland_altman_axes, mae
from cmrpipe.stats.table1 import format_mean_sd, format_p

TABLE3_ROWS = {"Cavity ED": ("dice_cavity", "ED"), "Cavity ES": ("dice_cavity", "ES"),
               "Myocardium ED": ("dice_myocardium", "ED"), "Myocardium ES": ("dice_myocardium", "ES")}
TABLE3_STATS = {"Q1": "q1", "Median": "median", "Q3": "q3", "Mean": "mean", "Std Dev": "sd"}
TABLE4_ROWS = {"LVEDVi (ml/m2)": "lvedvi_ml_m2", "LVESVi (ml/m2)": "lvesvi_ml_m2", "LVEF (%)": "lvef_pct",
               "LVMi (g/m2)": "lvmi_g_m2"}
TRUTH_ROWS = {"LVEDV (ml)": "lvedv_ml", "LVESV (ml)": "lvesv_ml", "LVEF (%)": "lvef_pct", "LV mass (g)": "lv_mass_g",
              "LVEDVi (ml/m2)": "lvedvi_ml_m2", "LVESVi (ml/m2)": "lvesvi_ml_m2", "LVMi (g/m2)": "lvmi_g_m2"}


def _mean_sd(values, digits: int) -> str:
    values = pd.Series(values, dtype=float).dropna()
    return "n/a" if len(values) < 2 else format_mean_sd(values.mean(), values.std(ddof=1), digits)


def dice_statistics(dice: pd.DataFrame) -> pd.DataFrame:
    """Table 3's numbers: n, Q1, median, Q3, mean and SD of the Dice of each mask and phase.

    Images where both masks of a class are empty (no cavity in the apical cap, say) have no
    Dice for that class and are left out of it; ``n`` counts the images scored.
    """
    rows = {}
    for name, (column, phase) in TABLE3_ROWS.items():
        x = dice.loc[dice.phase == phase, column].dropna()
        rows[name] = {"n": len(x), "q1": x.quantile(0.25), "median": x.median(), "q3": x.quantile(0.75),
                      "mean": x.mean(), "sd": x.std(ddof=1)}
    return pd.DataFrame(rows).T


def table3(dice: pd.DataFrame) -> pd.DataFrame:
    """Paper A Table 3 reproduced beside the published cells (two decimals, as printed)."""
    numbers = dice_statistics(dice)
    out = {}
    for label, stat in TABLE3_STATS.items():
        out[(label, "reproduced")] = [f"{v:.2f}" if np.isfinite(v) else "n/a" for v in numbers[stat]]
        out[(label, "published")] = [published.printed("A", "Table 3", row, label, stat) for row in numbers.index]
    out[("images", "reproduced")] = numbers["n"].astype(int).astype(str)
    out[("images", "published")] = ["2,465 in all"] * len(numbers)
    return pd.DataFrame(out, index=numbers.index)


def agreement(measures: pd.DataFrame, a: str, b: str, rows: dict = TABLE4_ROWS) -> pd.DataFrame:
    """:func:`cmrpipe.stats.agreement.agreement_table` of ``a - b`` for each measure of ``rows``.

    ``a`` and ``b`` are column prefixes (``auto``, ``manual``, ``full``, ``truth``).
    """
    return agreement_table({name: (measures[f"{a}_{column}"], measures[f"{b}_{column}"])
                            for name, column in rows.items()})


def _p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    text = format_p(p)
    return f"p{text}" if text.startswith("<") else f"p={text}"


def table4(measures: pd.DataFrame, truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """Paper A Table 4 reproduced (automated vs manual on the subjects given) beside the published cells.

    Paper A compares its 155 test exams; pass :func:`cmrpipe.segment.table4_subjects`.

    With the truth, two more columns: the automated and the manual measures' differences from
    the synthetic truth, mean (SD), on the same subjects.
    """
    stats = agreement(measures, "auto", "manual")
    with_truth = with_truth_columns(measures, truth) if truth is not None else None
    out = {}
    for name in stats.index:
        s = stats.loc[name]
        row = {("r", "reproduced"): "n/a" if not np.isfinite(s.r) else f"{s.r:.2f} ({_p(s.p)})",
               ("r", "published"): published.table("A", "Table 4").loc[name, "Correlation coefficient"],
               ("auto - manual, mean (SD)", "reproduced"): (f"{s.mean_diff:.2f} ({s.sd_diff:.1f})"
                                                            if np.isfinite(s.sd_diff) else "n/a"),
               ("auto - manual, mean (SD)", "published"): published.table("A", "Table 4").loc[name, "Differences"],
               ("n", "reproduced"): str(int(s.n)), ("n", "published"): "155"}
        if with_truth is not None:
            column = TABLE4_ROWS[name]
            for who in ("auto", "manual"):
                row[(f"{who} - truth, mean (SD)", "synthetic truth")] = _mean_sd(
                    with_truth[f"{who}_{column}"] - with_truth[f"truth_{column}"], 2)
        out[name] = row
    return pd.DataFrame(out).T


def with_truth_columns(measures: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """``measures`` with the truth of each subject as ``truth_*`` columns (same names as the measures)."""
    columns = ["key", *TRUTH_ROWS.values()]
    renamed = truth[columns].rename(columns={c: f"truth_{c}" for c in columns if c != "key"})
    return measures.merge(renamed, on="key", how="left")


def truth_table(measures: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Every segmented subject that passed QC: automated (every slice, predicted ES) and manual vs the truth.

    Cells are mean (SD) of the differences from the truth and the MAE; the manual columns
    cover the subjects with contours.
    """
    both = with_truth_columns(measures[measures.qc_pass.astype(bool)], truth)
    out = {}
    for name, column in TRUTH_ROWS.items():
        row = {}
        for who, label in (("full", "automated"), ("manual", "manual")):
            if f"{who}_{column}" not in both:
                continue
            diff = both[f"{who}_{column}"] - both[f"truth_{column}"]
            row[(label, "n")] = str(int(diff.notna().sum()))
            row[(label, "minus truth, mean (SD)")] = _mean_sd(diff, 1)
            row[(label, "MAE")] = f"{mae(both[f'{who}_{column}'], both[f'truth_{column}']):.1f}"
        out[name] = row
    return pd.DataFrame(out).T


def es_agreement(measures: pd.DataFrame) -> pd.DataFrame:
    """The predicted ES frame (smallest predicted cavity) against the labelled ES: counts of the frame difference."""
    known = measures[measures.es_frame >= 0]
    diff = (known.es_frame_auto - known.es_frame).astype(int)
    counts = diff.value_counts().sort_index()
    return pd.DataFrame({"predicted ES - labelled ES (frames)": counts.index, "subjects": counts.to_numpy()})


def figure6(measures: pd.DataFrame):
    """Paper A Figure 6: Bland-Altman plots of automated minus manual, one panel per Table 4 measure."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    for ax, (name, column) in zip(axes, TABLE4_ROWS.items()):
        bland_altman_axes(ax, measures[f"auto_{column}"], measures[f"manual_{column}"], title=name,
                          units=name.split("(")[-1].rstrip(")"))
    fig.tight_layout()
    return fig


def training_curves(history: pd.DataFrame):
    """Loss and Dice per epoch, training (augmented) and validation."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for column, style in (("loss", "-"), ("val_loss", "--")):
        if column in history:
            left.plot(history.epoch, history[column], style, label=column.replace("val_", "validation "))
    left.set_xlabel("epoch")
    left.set_ylabel("CE + Dice loss")
    left.legend()
    for column, color in (("dice_cavity", "C0"), ("dice_myocardium", "C1")):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + column in history:
                right.plot(history.epoch, history[prefix + column], style, color=color,
                           label=("validation " if prefix else "training ") + column.replace("dice_", ""))
    right.set_xlabel("epoch")
    right.set_ylabel("Dice (argmax)")
    right.set_ylim(0, 1)
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure5_cases(dice: pd.DataFrame) -> pd.DataFrame:
    """The best, the mean and the worst test images by mean Dice (cavity and myocardium), as in Figure 5."""
    scored = dice.assign(score=dice[["dice_cavity", "dice_myocardium"]].mean(axis=1)).dropna(subset=["score"])
    if scored.empty:
        return scored
    picks = {"best": scored.score.idxmax(), "mean": (scored.score - scored.score.mean()).abs().idxmin(),
             "worst": scored.score.idxmin()}
    return scored.loc[list(picks.values())].assign(case=list(picks))


def figure5(store_dir: Path, masks_dir: Path, dice: pd.DataFrame):
    """Paper A Figure 5: manual (top) and automated (bottom) segmentations of the best, mean and worst test image."""
    from cmrpipe.segment import load_masks

    cases = figure5_cases(dice)
    fig, axes = plt.subplots(2, max(len(cases), 1), figsize=(3.2 * max(len(cases), 1), 6.4), squeeze=False)
    for j, (_, case) in enumerate(cases.iterrows()):
        subject = load_subject(store_dir, case.key)
        frame = subject.ed_frame if case.phase == "ED" else subject.es_frame
        image = subject.sax_images[case.slice, frame]
        manual = subject.contours[0 if case.phase == "ED" else 1, case.slice]
        auto = load_masks(masks_dir, case.key)[case.slice, frame]
        window = heart_window([manual, auto], margin=0.6, spacing_mm=tuple(subject.pixel_spacing_mm))
        aspect = subject.pixel_spacing_mm[0] / subject.pixel_spacing_mm[1]
        for i, (labels, who) in enumerate(((manual, "manual"), (auto, "automated"))):
            ax = axes[i, j]
            title = (f"{case.case}: {case.key} {case.phase} slice {case.slice}\n"
                     f"Dice cavity {case.dice_cavity:.2f}, myocardium {case.dice_myocardium:.2f}") if i == 0 else who
            show_image(ax, image, title, window, aspect)
            outline(ax, labels, [CAVITY], "tab:red")
            outline(ax, labels, [CAVITY, MYOCARDIUM], "tab:green")
        axes[0, j].set_ylabel("manual")
    fig.tight_layout()
    return fig
