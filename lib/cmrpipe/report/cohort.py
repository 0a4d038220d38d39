"""Figures and tables of the synthetic-cohort chapter: montages with truth, Table 1s, planted effects."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from skimage.measure import find_contours

from cmrpipe.report import published
from cmrpipe.stats.table1 import format_count_pct, format_mean_sd
from cmrpipe.synth.anatomy import LV_BLOOD_POOL, LV_MYO

_LV_EPI = (*LV_BLOOD_POOL, LV_MYO)


def outline(ax, labels: np.ndarray, classes, color: str) -> None:
    mask = np.isin(labels, classes).astype(float)
    for c in find_contours(mask, 0.5):
        ax.plot(c[:, 1], c[:, 0], color=color, lw=0.8)


def show_image(ax, image: np.ndarray, title: str, window: tuple[slice, slice], aspect: float = 1.0) -> None:
    """An image in grey, cropped to ``window``; ``aspect`` = row spacing / column spacing."""
    ax.imshow(image, cmap="gray", vmin=0, vmax=np.percentile(image, 99.5), aspect=aspect)
    ax.set_xlim(window[1].start - 0.5, window[1].stop - 0.5)
    ax.set_ylim(window[0].stop - 0.5, window[0].start - 0.5)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def heart_window(label_maps: list[np.ndarray], margin: float = 0.8,
                 spacing_mm: tuple[float, float] = (1.0, 1.0)) -> tuple[slice, slice]:
    """A window around the heart in a set of label maps, square in mm, ``margin`` of its size on each side.

    Examples
    --------
    >>> m = np.zeros((100, 100), np.uint8); m[40:50, 60:70] = 1
    >>> heart_window([m], margin=0.5)
    (slice(35, 55, None), slice(55, 75, None))
    >>> heart_window([m], margin=0.5, spacing_mm=(2.0, 1.0))  # rows 2 mm apart: the heart is 20 mm tall
    (slice(35, 55, None), slice(45, 85, None))
    """
    rows, cols = label_maps[0].shape
    found = np.argwhere(np.any([m > 0 for m in label_maps], axis=0))
    if not len(found):
        return slice(0, rows), slice(0, cols)
    (r0, c0), (r1, c1) = found.min(axis=0).tolist(), (found.max(axis=0) + 1).tolist()
    half_mm = max((r1 - r0) * spacing_mm[0], (c1 - c0) * spacing_mm[1]) * (0.5 + margin)
    half_r, half_c = (int(np.ceil(half_mm / step)) for step in spacing_mm)
    rc, cc = (r0 + r1) // 2, (c0 + c1) // 2
    return slice(max(0, rc - half_r), min(rows, rc + half_r)), slice(max(0, cc - half_c), min(cols, cc + half_c))


LOOKS = {"mesa": "MESA-like gradient echo", "ukb": "UK Biobank-like SSFP"}


def example_montages(cohort_dir: Path, examples: dict, protocol: str, figures_dir: Path):
    """The example subject of one look: its montage saved as ``synth_montage_<protocol>.png`` (images
    alone), and returned with the truth overlaid; a sentence when the run made no subject of this look."""
    from cmrpipe.synth import read

    if protocol not in examples:
        return f"no {LOOKS[protocol]} subjects in this run"
    key = examples[protocol]
    images, truth = read.subject_images(cohort_dir, key), read.subject_truth(cohort_dir, key)
    save(montage(images, truth, f"{LOOKS[protocol]}: {key}", overlay=False),
         Path(figures_dir) / f"synth_montage_{protocol}.png")
    return montage(images, truth, f"{LOOKS[protocol]} with truth: {key}")


def montage(images: dict, truth: dict, title: str, overlay: bool = True):
    """One subject: every SAX slice at ED and ES, then 2CH and 4CH at ED and ES.

    Parameters
    ----------
    images : dict
        View name -> (frames, rows, cols) pixels, as read from the subject's DICOM.
    truth : dict
        From :func:`cmrpipe.synth.read.subject_truth`.
    title : str
    overlay : bool
        Draw the true LV endo- (red) and epicardium (green), mitral hinge points
        (yellow) and RV insertion points (cyan).

    Returns
    -------
    matplotlib.figure.Figure
    """
    es = int(truth["attrs"]["es_frame"])
    row_mm, col_mm = truth["attrs"]["pixel_spacing_mm"]
    aspect = float(row_mm / col_mm)  # non-square pixels (MESA-like) shown at their true shape
    sax = sorted(v for v in images if v.startswith("sax"))
    sax_window = heart_window([truth["labels"][v][0] for v in sax], 0.5, (row_mm, col_mm))
    n_cols = max(len(sax), 4)
    fig, axes = plt.subplots(3, n_cols, figsize=(1.9 * n_cols, 6.2))
    for row, (phase, frame) in enumerate((("ED", 0), ("ES", es))):
        for k in range(n_cols):
            ax = axes[row, k]
            if k >= len(sax):
                ax.axis("off")
                continue
            view = sax[k]
            show_image(ax, images[view][frame], f"{view} {phase}", sax_window, aspect)
            if overlay:
                outline(ax, truth["labels"][view][frame], LV_BLOOD_POOL, "red")
                outline(ax, truth["labels"][view][frame], _LV_EPI, "lime")
                rv = truth["landmarks"].get(f"rv_insertion_{phase.lower()}_rc")
                if rv is not None and np.isfinite(rv[k]).all():
                    ax.plot(rv[k][:, 1], rv[k][:, 0], "+", color="cyan", ms=6)
    for j, (view, phase, frame) in enumerate((("lax_2ch", "ED", 0), ("lax_2ch", "ES", es),
                                              ("lax_4ch", "ED", 0), ("lax_4ch", "ES", es))):
        ax = axes[2, j]
        show_image(ax, images[view][frame], f"{view[-3:].upper()} {phase}", heart_window([truth["labels"][view][0]], 0.3, (row_mm, col_mm)), aspect)
        if overlay:
            outline(ax, truth["labels"][view][frame], LV_BLOOD_POOL, "red")
            outline(ax, truth["labels"][view][frame], _LV_EPI, "lime")
            hinge = truth["landmarks"][f"mitral_{view[-3:]}_rc"][frame]
            ax.plot(hinge[:, 1], hinge[:, 0], "x", color="yellow", ms=6)
    for ax in axes[2, 4:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _mean_sd(x: pd.Series) -> str:
    return format_mean_sd(x.mean(), x.std())


def _count_pct(x: pd.Series) -> str:
    return format_count_pct(int(x.sum()), 100 * x.mean())


def table1_comparison(truth: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The synthetic cohort's demographics beside the published Table 1 of its paper.

    MESA-like subjects are compared with Paper A Table 1 (whole MESA CMR cohort),
    UK Biobank-like ones with Paper B Table 1 (training set). Synthetic cells are
    mean (SD) or count (%); published cells are as printed.

    Returns
    -------
    DataFrame or str
        characteristic, synthetic, published; a sentence when the run made no subject of this look.
    """
    t = truth[truth.protocol == protocol]
    if t.empty:
        return f"no {LOOKS.get(protocol, protocol)} subjects in this run"
    if protocol == "mesa":
        paper, table, column = "A", "Table 1", "MESA CMR"
        rows = [("N", str(len(t)), "N"), ("Age (years)", _mean_sd(t.age_years), "Age (years)"),
                ("Female", _count_pct(t.sex == "F"), "Gender: Female"),
                ("SBP (mmHg)", _mean_sd(t.sbp_mmhg), "SBP (mmHg)"), ("DBP (mmHg)", _mean_sd(t.dbp_mmhg), "DBP (mmHg)"),
                ("Heart rate (bpm)", _mean_sd(t.hr_bpm), "Heart Rate (bpm)"),
                ("Diabetes", _count_pct(t.diabetes), "Diabetes: Yes"),
                ("Hypertension", _count_pct(t.hypertension), "Hypertension: Yes"),
                ("Smoking: never", _count_pct(t.smoking_status == "never"), "Smoking Status: Never"),
                ("Smoking: former", _count_pct(t.smoking_status == "former"), "Smoking Status: Former"),
                ("Smoking: current", _count_pct(t.smoking_status == "current"), "Smoking Status: Current")]
    else:
        paper, table, column = "B", "Table 1", "Training set"
        rows = [("N", str(len(t)), "N"), ("Age (years)", _mean_sd(t.age_years), "Age"),
                ("Female", _count_pct(t.sex == "F"), "Female"),
                ("SBP (mmHg)", _mean_sd(t.sbp_mmhg), "Systolic blood pressure (mm Hg)"),
                ("DBP (mmHg)", _mean_sd(t.dbp_mmhg), "Diastolic blood pressure (mm Hg)"),
                ("Hypertension", _count_pct(t.hypertension), "HTN"),
                ("Diabetes", _count_pct(t.diabetes), "Diabetes"),
                ("Heart failure (enriched)", _count_pct(t.heart_failure), "Heart failure")]
    printed = published.table(paper, table)
    return pd.DataFrame([{"characteristic": name, "synthetic": value,
                          f"published (Paper {paper} {table}, {column})": printed.loc[row, column]}
                         for name, value, row in rows]).set_index("characteristic")


def demographics_figure(truth: pd.DataFrame):
    """Distributions of age, blood pressure and body size, and risk-factor prevalence, by look.

    Dashed lines and grey bars are the published values (Paper A Table 1 MESA CMR for the
    MESA look, Paper B Table 1 training set for the UK Biobank look).
    """
    import seaborn as sns

    ref = {"mesa": {"age": published.value("A", "Table 1", "Age (years)", "MESA CMR", "mean"),
                    "sbp": published.value("A", "Table 1", "SBP (mmHg)", "MESA CMR", "mean"),
                    "hypertension": published.value("A", "Table 1", "Hypertension: Yes", "MESA CMR", "pct"),
                    "diabetes": published.value("A", "Table 1", "Diabetes: Yes", "MESA CMR", "pct")},
           "ukb": {"age": published.value("B", "Table 1", "Age", "Training set", "mean"),
                   "sbp": published.value("B", "Table 1", "Systolic blood pressure (mm Hg)", "Training set", "mean"),
                   "hypertension": published.value("B", "Table 1", "HTN", "Training set", "pct"),
                   "diabetes": published.value("B", "Table 1", "Diabetes", "Training set", "pct")}}
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.3))
    palette = dict(zip(("mesa", "ukb"), sns.color_palette(n_colors=2)))
    for ax, column, key, label in ((axes[0], "age_years", "age", "age (years)"),
                                   (axes[1], "sbp_mmhg", "sbp", "systolic blood pressure (mmHg)")):
        sns.histplot(data=truth, x=column, hue="protocol", stat="density", common_norm=False, element="step",
                     palette=palette, ax=ax)
        for protocol, values in ref.items():
            ax.axvline(values[key], color=palette[protocol], ls="--", lw=1)
        ax.set(xlabel=label, title=f"{label.split(' (')[0]} (dashed: published mean)")
    sns.scatterplot(data=truth, x="height_cm", y="weight_kg", hue="sex", s=10, ax=axes[2])
    axes[2].set(title="body size", xlabel="height (cm)", ylabel="weight (kg)")
    rows = []
    for protocol, values in ref.items():
        t = truth[truth.protocol == protocol]
        for factor, short in (("hypertension", "HTN"), ("diabetes", "DM")):
            if len(t):
                rows.append({"factor": f"{short}\n{protocol}", "source": "synthetic", "pct": 100 * t[factor].mean()})
            rows.append({"factor": f"{short}\n{protocol}", "source": "published", "pct": values[factor]})
    sns.barplot(data=pd.DataFrame(rows), x="factor", y="pct", hue="source",
                palette={"synthetic": "tab:blue", "published": "0.7"}, ax=axes[3])
    axes[3].set(title="prevalence (%)", xlabel="", ylabel="%")
    fig.tight_layout()
    return fig


def planted_effects_figure(truth: pd.DataFrame):
    """What the planted effects did to the true measures: mass, EF and volume by risk factor."""
    import seaborn as sns

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
    sns.boxplot(data=truth, x="hypertension", y="lvmi_g_m2", hue="protocol", ax=axes[0])
    axes[0].set(title="hypertension: concentric hypertrophy", ylabel="true LVMi (g/m2)")
    ukb = truth[truth.protocol == "ukb"]
    if len(ukb):
        sns.boxplot(data=ukb, x="heart_failure", y="lvef_pct", ax=axes[1])
    axes[1].set(title="heart failure: low EF (UKB look)", ylabel="true LVEF (%)")
    sns.scatterplot(data=truth, x="bsa_m2", y="lvedv_ml", hue="sex", s=12, ax=axes[2])
    axes[2].set(title="body size and sex", ylabel="true LVEDV (ml)")
    mesa = truth[truth.protocol == "mesa"]
    if len(mesa):
        sns.boxplot(data=mesa, x="high_cholesterol", y="lvmi_g_m2", ax=axes[3])
    axes[3].set(title="cholesterol: no effect (null control)", ylabel="true LVMi (g/m2)")
    fig.tight_layout()
    return fig


def measures_summary(truth: pd.DataFrame) -> pd.DataFrame:
    """True volumes, EF and mass by protocol and sex: mean (SD)."""
    cols = {"lvedv_ml": "LVEDV (ml)", "lvedvi_ml_m2": "LVEDVi (ml/m2)", "lvesv_ml": "LVESV (ml)",
            "lvef_pct": "LVEF (%)", "lv_mass_g": "LV mass (g)", "lvmi_g_m2": "LVMi (g/m2)"}
    out = truth.groupby(["protocol", "sex"])[list(cols)].agg(lambda x: f"{x.mean():.1f} ({x.std():.1f})")
    out.insert(0, "n", truth.groupby(["protocol", "sex"]).size())
    return out.rename(columns=cols)


def protocols_table(truth: pd.DataFrame) -> pd.DataFrame:
    """How each look was acquired: matrix, pixel spacing drawn, slices, frames, sequence."""
    from cmrpipe.synth.protocols import protocol

    rows = {}
    for name, group in truth.groupby("protocol", sort=False):
        p = protocol(name, int(group.n_frames.iloc[0]))
        rows[name] = {
            "sequence": f"{p.sequence} (TE {p.echo_ms:g} ms, TR {p.repetition_ms:g} ms)",
            "matrix (rows x columns)": f"{p.rows} x {p.cols}",
            "row spacing (mm)": f"{group.pixel_row_mm.min():.2f}-{group.pixel_row_mm.max():.2f}",
            "column spacing (mm)": f"{group.pixel_col_mm.min():.2f}-{group.pixel_col_mm.max():.2f}",
            "SAX slice / gap (mm)": f"{p.thickness_mm:g} / {p.gap_mm:g}",
            "SAX slices": f"{group.n_sax_slices.min()}-{group.n_sax_slices.max()}",
            "cine frames": str(p.n_frames),
        }
    return pd.DataFrame(rows)


def faults_table(truth: pd.DataFrame) -> pd.DataFrame:
    """The planted faults and the exclusion each should cause."""
    return truth.loc[truth.fault.fillna("") != "", ["key", "fault", "fault_file", "expected_stage",
                                                    "expected_reason"]].set_index("key")


def save(fig, path: Path) -> Path:
    """Write a figure as PNG (folders made as needed) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
