"""Chapter 00, "The papers": the published tables and headline figures, rendered from data.

Everything here reads :mod:`cmrpipe.report.published`; nothing is typed twice.
Headline numbers are formatted as strings (as printed, trailing zeros kept) and
glued with myst-nb, so the chapter's prose quotes them through ``{glue:text}``.
"""

from __future__ import annotations

import html

import pandas as pd

from cmrpipe.report import published

_B_SEG, _B_REG, _B_IVF = ("ML4H_seg vs manual LV mass", "ML4H_reg vs manual LV mass",
                          "Centered InlineVF vs manual LV mass")

# glue key -> (paper, table, row, column, statistic) of a single printed number
HEADLINE_NUMBERS = {
    "a_n_cohort": ("A", "Table 1", "N", "MESA CMR", "n"),
    "a_n_landmark": ("A", "Table 1", "N", "Landmark Detection", "n"),
    "a_n_segmentation": ("A", "Table 1", "N", "Segmentation", "n"),
    "a_n_atlas": ("A", "Table 1", "N", "Atlas Validation", "n"),
    "a_landmark_2ch_auto_obs1_mm": ("A", "Table 2", "2CH LAX", "Auto vs Obs1", "mean"),
    "a_landmark_2ch_obs1_obs2_mm": ("A", "Table 2", "2CH LAX", "Obs1 vs Obs2", "mean"),
    "a_dice_cavity_ed_mean": ("A", "Table 3", "Cavity ED", "Mean", "mean"),
    "a_dice_myo_ed_mean": ("A", "Table 3", "Myocardium ED", "Mean", "mean"),
    "a_lvedvi_r": ("A", "Table 4", "LVEDVi (ml/m2)", "Correlation coefficient", "r"),
    "a_lvmi_r": ("A", "Table 4", "LVMi (g/m2)", "Correlation coefficient", "r"),
    "a_auc_htn_man": ("A", "Table 5", "Hypertension", "Man", "auc"),
    "a_auc_htn_auto": ("A", "Table 5", "Hypertension", "Auto", "auc"),
    "b_n_training": ("B", "Table 1", "N", "Training set", "n"),
    "b_n_holdout_manual": ("B", "Text", "Holdout set with manually labeled LV mass", "N", "n"),
    "b_recal_slope": ("B", "Text", "InlineVF linear recalibration", "Equation coefficient", "slope"),
    "b_recal_intercept": ("B", "Text", "InlineVF linear recalibration", "Equation coefficient", "intercept"),
}

# glue key -> (paper, table, row, column, statistic) of an estimate, printed with its CI
HEADLINE_INTERVALS = {
    "b_seg_r": ("B", "Text", _B_SEG, "Pearson r", "r"),
    "b_seg_mae_g": ("B", "Text", _B_SEG, "MAE", "mae"),
    "b_reg_r": ("B", "Text", _B_REG, "Pearson r", "r"),
    "b_reg_mae_g": ("B", "Text", _B_REG, "MAE", "mae"),
    "b_ivf_r": ("B", "Text", _B_IVF, "Pearson r", "r"),
    "b_ivf_mae_g": ("B", "Text", _B_IVF, "MAE", "mae"),
    "b_or_htn_lvh_seg": ("B", "Table 2", "Hypertension: Segmentation", "LVH", "or"),
    "b_or_af_lvh_seg": ("B", "Table 2", "Atrial fibrillation: Segmentation", "LVH", "or"),
    "b_or_hf_lvh_seg": ("B", "Table 2", "Heart failure: Segmentation", "LVH", "or"),
}


def headline_texts() -> dict[str, str]:
    """Every headline figure as the string to show, keyed by glue name.

    Numbers keep the decimals the paper printed; intervals read ``est (lo–hi)``,
    and a flagged cell carries a dagger so the reader looks up the flag.

    Examples
    --------
    >>> headline_texts()["b_seg_r"]
    '0.864 (0.847–0.880)'
    """
    texts = {}
    for key, (paper, table, row, column, stat) in HEADLINE_NUMBERS.items():
        texts[key] = published.printed(paper, table, row, column, stat)
    for key, (paper, table, row, column, stat) in HEADLINE_INTERVALS.items():
        est, lo, hi = (published.printed(paper, table, row, column, s) for s in (stat, "ci_low", "ci_high"))
        flag = " †" if published.note(paper, table, row, column, stat).startswith(published.FLAGS) else ""
        texts[key] = f"{est} ({lo}–{hi}){flag}"
    return texts


def glue_headlines() -> pd.DataFrame:
    """Glue every headline figure for the chapter's prose; return them as a table."""
    from myst_nb import glue

    texts = headline_texts()
    for key, text in texts.items():
        glue(key, text, display=False)
    return pd.DataFrame({"glue key": list(texts), "as printed": list(texts.values())})


def _styled(df: pd.DataFrame, caption: str, index: bool = True):
    """A table for the book: HTML-escaped text (papers print "p<0.001"), left-aligned."""
    styler = df.style.format(escape="html").format_index(escape="html", axis="columns")
    styler = styler.format_index(escape="html", axis="index") if index else styler.hide(axis="index")
    styler = styler.set_caption(html.escape(caption))
    return styler.set_table_styles([{"selector": "td, th", "props": [("text-align", "left"), ("padding", "0.1em 0.8em")]}])


def show_table(paper: str, table: str):
    """A published table as printed, with its caption, ready to display.

    Parameters
    ----------
    paper : {"A", "B"}
    table : str
        E.g. ``"Table 1"``.

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    caption = f"Paper {paper}, {table}. {published.TABLE_CAPTIONS.get((paper, table), '')}"
    return _styled(published.table(paper, table), caption)


def text_figures(paper: str) -> pd.DataFrame:
    """The figures a paper quotes in its text, one row per quoted cell.

    Columns: ``figure`` (what it counts or measures), ``values`` (each statistic
    with its printed number) and ``as printed`` (the phrase of the paper).

    Examples
    --------
    >>> text_figures("B").set_index("figure").loc["ML4H_seg vs manual LV mass: MAE", "values"]
    'mae 10.41, ci_low 9.82, ci_high 10.99'
    """
    df = published.load(printed=True)
    df = df[(df.paper == paper) & (df.table == "Text")]
    rows = []
    for (row, column), cell in df.groupby(["row", "column"], sort=False):
        rows.append({"figure": f"{row}: {column}",
                     "values": ", ".join(f"{s} {v}" for s, v in zip(cell.statistic, cell.value)),
                     "as printed": cell.text.iloc[0], "note": cell.note.iloc[0]})
    return pd.DataFrame(rows)


def show_text_figures(paper: str):
    """:func:`text_figures` with its caption, ready to display."""
    return _styled(text_figures(paper), f"Paper {paper}. {published.TABLE_CAPTIONS.get((paper, 'Text'), '')}",
                   index=False)


def show_flagged():
    """The cells flagged as typos or inconsistencies in the papers, with the reason."""
    return _styled(published.flagged(), "Cells flagged in the transcription of the papers.", index=False)
