"""Cohort flow figures (Paper A Figure 2 and its Paper B counterpart) and exclusion counts.

Every number drawn comes from the subject index (with the columns of
:func:`cmrpipe.splits.assign_splits`) and the exclusions table; nothing is typed in.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

MAX_REASON_LINES = 6  # reasons listed one by one in an "Excluded" box; the rest are summed
_EXCLUSION_COLUMNS = ("protocol", "stage", "reason")
_BOX = {"boxstyle": "round,pad=0.5", "facecolor": "white", "edgecolor": "0.3"}
_EXCLUDED = {**_BOX, "facecolor": "#fdecea"}
_GROUP = {**_BOX, "facecolor": "#e8f0fb"}


def exclusions_summary(exclusions: pd.DataFrame | None) -> pd.DataFrame:
    """Counts of excluded subjects by protocol, stage and reason, most common first.

    Parameters
    ----------
    exclusions : DataFrame or None
        One row per excluded subject, with columns ``protocol``, ``stage`` and ``reason``.
        ``None`` or an empty table means no exclusions.

    Returns
    -------
    DataFrame
        Columns ``protocol``, ``stage``, ``reason``, ``n_subjects``.

    Examples
    --------
    >>> ex = pd.DataFrame({"key": ["a", "b", "c"], "protocol": ["mesa"] * 3,
    ...                    "stage": ["qc", "ingest", "qc"], "reason": ["no LV", "bad file", "no LV"]})
    >>> exclusions_summary(ex)
      protocol   stage    reason  n_subjects
    0     mesa      qc     no LV           2
    1     mesa  ingest  bad file           1
    >>> len(exclusions_summary(None))
    0
    """
    if exclusions is None or len(exclusions) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in _EXCLUSION_COLUMNS}
                            | {"n_subjects": pd.Series(dtype=int)})
    missing = [c for c in _EXCLUSION_COLUMNS if c not in exclusions.columns]
    if missing:
        raise ValueError(f"exclusions table lacks column(s) {missing}")
    table = (exclusions.loc[:, list(_EXCLUSION_COLUMNS)].fillna("(not given)").astype(str)
             .groupby(list(_EXCLUSION_COLUMNS)).size().rename("n_subjects").reset_index())
    table = table.sort_values(["protocol", "n_subjects", "stage", "reason"], ascending=[True, False, True, True])
    return table.reset_index(drop=True)


def _n(count) -> str:
    return f"N = {int(count):,}"


def _box(ax, x: float, y: float, text: str, style: dict | None = None, size_pt: float = 8):
    return ax.text(x, y, text, ha="center", va="center", fontsize=size_pt, transform=ax.transAxes,
                   bbox=style or _BOX)


def _arrow(ax, source, target, sideways: bool = False) -> None:
    start, end = ((1.0, 0.5), (0.0, 0.5)) if sideways else ((0.5, 0.0), (0.5, 1.0))
    ax.annotate("", xy=end, xycoords=target, xytext=start, textcoords=source,
                arrowprops={"arrowstyle": "-|>", "color": "0.3", "shrinkA": 6, "shrinkB": 6})


def _rows(index: pd.DataFrame, protocol: str) -> pd.DataFrame:
    missing = [c for c in ("key", "protocol", "status") if c not in index.columns]
    if missing:
        raise ValueError(f"subject index lacks column(s) {missing}")
    rows = index.loc[index["protocol"].astype(str).str.lower() == protocol]
    return rows.fillna({c: "" for c in rows.columns if c.endswith(("split", "subcohort"))})


def _split_columns(rows: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        raise ValueError(f"subject index lacks split column(s) {missing}: run cmrpipe.splits.assign_splits first")


def _flag(rows: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(rows[column], errors="coerce").fillna(0).to_numpy() == 1


def excluded_text(index: pd.DataFrame, exclusions: pd.DataFrame | None, protocol: str) -> str:
    """The text of a flow figure's "Excluded" box: N from the index, counts by reason from exclusions.

    Excluded subjects of the index that the exclusions table does not list are counted as
    "no reason recorded", so the reason lines always add up to N.

    Examples
    --------
    >>> index = pd.DataFrame({"key": ["m1", "m2", "m3"], "protocol": "mesa",
    ...                       "status": ["excluded", "excluded", "included"]})
    >>> ex = pd.DataFrame({"key": ["m1"], "protocol": ["mesa"], "stage": ["qc"], "reason": ["no LV"]})
    >>> print(excluded_text(index, ex, "mesa"))
    Excluded
    N = 2
    qc: no LV (1)
    no reason recorded (1)
    """
    rows = _rows(index, protocol)
    excluded_keys = set(rows.loc[rows["status"].astype(str).str.lower() == "excluded", "key"].astype(str))
    summary = exclusions_summary(exclusions)
    summary = summary.loc[summary["protocol"].str.lower() == protocol]
    lines = ["Excluded", _n(len(excluded_keys))]
    for row in summary.head(MAX_REASON_LINES).itertuples():
        lines.append(f"{row.stage}: {textwrap.shorten(row.reason, 48, placeholder='...')} ({row.n_subjects:,})")
    if len(summary) > MAX_REASON_LINES:
        lines.append(f"other reasons ({summary['n_subjects'].iloc[MAX_REASON_LINES:].sum():,})")
    if exclusions is not None and len(exclusions) and "key" not in exclusions.columns:
        raise ValueError("exclusions table lacks column ['key']")
    listed = set() if exclusions is None or len(exclusions) == 0 else set(exclusions["key"].astype(str))
    if unrecorded := len(excluded_keys - listed):
        lines.append(f"no reason recorded ({unrecorded:,})")
    return "\n".join(lines)


def _top(ax, index, exclusions, protocol: str, title: str):
    """Cohort -> included, with the excluded box to the side; returns the included box."""
    rows = _rows(index, protocol)
    n_included = int((rows["status"].astype(str).str.lower() == "included").sum())
    cohort = _box(ax, 0.40, 0.95, f"{title}\n{_n(len(rows))}", _GROUP)
    excluded = _box(ax, 0.80, 0.86, excluded_text(index, exclusions, protocol), _EXCLUDED, size_pt=7)
    included = _box(ax, 0.40, 0.77, f"Included\n{_n(n_included)}", _GROUP)
    _arrow(ax, cohort, included)
    _arrow(ax, cohort, excluded, sideways=True)
    return included


def _branch(ax, parent, x_positions, y: float, labels, counts) -> list:
    boxes = [_box(ax, x, y, f"{label}\n{_n(n)}") for x, label, n in zip(x_positions, labels, counts)]
    for box in boxes:
        _arrow(ax, parent, box)
    return boxes


def _counts(values: pd.Series, names) -> list[int]:
    return [int((values == name).sum()) for name in names]


def _canvas(size_in: tuple[float, float], title: str):
    fig = plt.figure(figsize=size_in)
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.91))
    ax.set_axis_off()
    fig.suptitle(title, fontsize=10, y=0.98)
    return fig, ax


def paper_a_flow(index: pd.DataFrame, exclusions: pd.DataFrame | None):
    """Paper A Figure 2: MESA cases into the Training and Atlas Validation sub-cohorts.

    MESA cases -> excluded (counts by stage and reason) and included -> Training sub-cohort
    (landmark detection: train / validation / test; segmentation: train / validation / test)
    and Atlas Validation sub-cohort (those with both contours and landmarks, the manual atlas).

    Parameters
    ----------
    index : DataFrame
        Subject index after :func:`cmrpipe.splits.assign_splits`.
    exclusions : DataFrame or None
        The exclusions table (one row per excluded subject).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = _rows(index, "mesa")
    _split_columns(rows, ("subcohort", "landmark_split", "seg_split"))
    fig, ax = _canvas((13, 8), "Paper A, Figure 2: division of MESA cases (reproduced from this cohort)")
    included = _top(ax, index, exclusions, "mesa", "MESA CMR cases")
    training, atlas = _branch(ax, included, (0.30, 0.80), 0.57, ("Training sub-cohort", "Atlas Validation sub-cohort"),
                              _counts(rows["subcohort"], ("training", "atlas_validation")))
    in_atlas = (rows["subcohort"] == "atlas_validation").to_numpy()
    n_atlas_manual = int((in_atlas & _flag(rows, "has_contours") & _flag(rows, "has_landmarks")).sum())
    landmark, seg = _branch(ax, training, (0.14, 0.45), 0.35,
                            ("Landmark detection\n(observer landmarks)", "Segmentation\n(core-lab contours)"),
                            (int((rows["landmark_split"] != "").sum()), int((rows["seg_split"] != "").sum())))
    _branch(ax, atlas, (0.80,), 0.35, ("Atlas evaluation\n(contours and landmarks)",), (n_atlas_manual,))
    splits = ("train", "validation", "test")
    _branch(ax, landmark, (0.04, 0.14, 0.25), 0.12, ("Training", "Validation", "Test\n(both observers)"),
            _counts(rows["landmark_split"], splits))
    _branch(ax, seg, (0.36, 0.45, 0.54), 0.12, ("Training", "Validation", "Test"), _counts(rows["seg_split"], splits))
    return fig


def paper_b_flow(index: pd.DataFrame, exclusions: pd.DataFrame | None):
    """Paper B cohort flow: UK Biobank CMR into the ML4H_reg and ML4H_seg sets.

    UK Biobank CMR -> excluded (counts by stage and reason) and included -> with manual LV
    mass (ML4H_reg: train / validation / holdout) and with InlineVF contours (ML4H_seg:
    training set / holdout); the Table 1 training / holdout split of all included subjects
    is written underneath.

    Parameters
    ----------
    index : DataFrame
        Subject index after :func:`cmrpipe.splits.assign_splits`.
    exclusions : DataFrame or None
        The exclusions table (one row per excluded subject).

    Returns
    -------
    matplotlib.figure.Figure
    """
    rows = _rows(index, "ukb")
    _split_columns(rows, ("mass_split", "seg_split", "cohort_split"))
    fig, ax = _canvas((13, 7), "Paper B: UK Biobank cohort flow (reproduced from this cohort)")
    included = _top(ax, index, exclusions, "ukb", "UK Biobank CMR")
    mass, inlinevf = _branch(ax, included, (0.20, 0.62), 0.50,
                             ("With manual LV mass", "With InlineVF contours"),
                             (int((rows["mass_split"] != "").sum()), int((rows["seg_split"] != "").sum())))
    _branch(ax, mass, (0.07, 0.20, 0.33), 0.20, ("ML4H_reg training", "Validation", "Holdout"),
            _counts(rows["mass_split"], ("train", "validation", "holdout")))
    _branch(ax, inlinevf, (0.54, 0.70), 0.20, ("ML4H_seg training set", "Holdout"),
            _counts(rows["seg_split"], ("train", "holdout")))
    n_train, n_holdout = _counts(rows["cohort_split"], ("train", "holdout"))
    ax.text(0.40, 0.03, f"Table 1 split of the included subjects: training set {_n(n_train)}, "
            f"holdout set {_n(n_holdout)}", ha="center", va="center", fontsize=8, transform=ax.transAxes)
    return fig
