"""The papers' published values, transcribed once, as data.

``data/published.csv`` holds every number of Paper A Tables 1-5 and A-1, Paper B
Tables 1 and 2, and the headline figures of both papers' texts (table ``Text``), as
tidy records::

    paper, table, row, column, statistic, value, text, unit, note

One record is one number: a printed cell such as ``61.5 (10.1)`` gives two records
(``mean`` and ``sd``) that share the cell's ``text`` exactly as printed. Cells that
are typos in the paper are transcribed as written and flagged by a ``note`` that
starts with ``typo:``; values that disagree with another part of the same paper are
flagged ``inconsistent:``. Reproduced tables stand beside these values; nothing in the
pipeline reads them to steer a result.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from cmrpipe.paths import PAPERS_DIR

DATA_FILE = Path(__file__).parent / "data" / "published.csv"
FLAGS = ("typo:", "inconsistent:")
"""How a ``note`` starts when it flags a cell of the paper as a typo or an inconsistency."""
COLUMNS = ["paper", "table", "row", "column", "statistic", "value", "text", "unit", "note"]

PAPER_FILES = {
    "A": PAPERS_DIR / "000_c6791dcf1c5c6562.txt",
    "B": PAPERS_DIR / "003_231124add2f4e419.txt",
}
PAPER_TITLES = {
    "A": "Paper A: automated left-ventricular atlas from legacy MESA gradient-echo cine CMR",
    "B": "Paper B: deep learning to estimate CMR-derived left ventricular mass (ML4H, UK Biobank)",
}
TABLE_CAPTIONS = {
    ("A", "Table 1"): "Patient demographics of the MESA CMR cohort and its sub-cohorts; mean (SD) or count (%). "
                      "* p<0.05, $ p<0.01, # p<0.001 for a sub-cohort against the rest of the cohort.",
    ("A", "Table 2"): "Landmark distances (mm, mean (SD)) and ICC on 50 validation cases.",
    ("A", "Table 3"): "Dice scores of the segmentation network on the test dataset (n=2,465 images).",
    ("A", "Table 4"): "Indexed LV volumes, EF and mass, automated vs manual, 155 test cases; differences mean (SD).",
    ("A", "Table 5"): "AUC of LV shape associations with risk factors, manual (Man) vs automated (Auto) contours; "
                      "* p<0.05 DeLong test.",
    ("A", "Table A-1"): "Landmark errors (mm, mean (SD)) of independently trained networks vs the cyclic "
                        "transfer-learning strategy, 232 validation cases.",
    ("B", "Table 1"): "Baseline characteristics of the training and holdout sets.",
    ("B", "Table 2"): "Odds ratios (95% CI), adjusted for age and sex, of prevalent disease per LV mass index SD "
                      "and for LVH by each method.",
    ("A", "Text"): "Headline figures quoted in Paper A's text.",
    ("B", "Text"): "Headline figures quoted in Paper B's abstract and results.",
}


@functools.cache
def _printed_records() -> pd.DataFrame:
    """The CSV as text: ``value`` keeps the decimals the paper printed ("0.90", "14.30")."""
    df = pd.read_csv(DATA_FILE, dtype=str, keep_default_na=False)
    if list(df.columns) != COLUMNS:
        raise ValueError(f"{DATA_FILE}: columns {list(df.columns)} differ from {COLUMNS}")
    return df


@functools.cache
def _records() -> pd.DataFrame:
    return _printed_records().astype({"value": float})


def load(printed: bool = False) -> pd.DataFrame:
    """Every published record, in printed order (a fresh copy each call).

    With ``printed=True`` the ``value`` column holds the numbers as printed (text,
    trailing zeros kept: "0.90", "14.30") instead of floats.
    """
    return (_printed_records() if printed else _records()).copy()


def _record(paper: str, table: str, row: str, column: str, statistic: str) -> pd.Series:
    df = _printed_records()
    hit = df[(df.paper == paper) & (df.table == table) & (df.row == row)
             & (df.column == column) & (df.statistic == statistic)]
    if len(hit) != 1:
        raise KeyError(f"{len(hit)} published records match paper {paper}, {table}, row {row!r}, "
                       f"column {column!r}, statistic {statistic!r}")
    return hit.iloc[0]


def value(paper: str, table: str, row: str, column: str, statistic: str) -> float:
    """One published number.

    Raises
    ------
    KeyError
        When no record, or more than one, matches.

    Examples
    --------
    >>> value("B", "Table 2", "Heart failure: Segmentation", "LVH", "or")
    4.67
    """
    return float(_record(paper, table, row, column, statistic)["value"])


def printed(paper: str, table: str, row: str, column: str, statistic: str) -> str:
    """One published number as printed (decimals kept, no thousands separators).

    Examples
    --------
    >>> printed("A", "Table 3", "Myocardium ES", "Mean", "mean")
    '0.90'
    """
    return _record(paper, table, row, column, statistic)["value"]


def note(paper: str, table: str, row: str, column: str, statistic: str) -> str:
    """The transcription note of one published number ('' when none)."""
    return _record(paper, table, row, column, statistic)["note"]


def tables(paper: str) -> list[str]:
    """The table names of one paper, in the order transcribed.

    Parameters
    ----------
    paper : {"A", "B"}

    Returns
    -------
    list of str
        E.g. ``["Table 1", ..., "Table A-1", "Text"]``.
    """
    df = _records()
    return list(dict.fromkeys(df.loc[df.paper == paper, "table"]))


def table(paper: str, table: str) -> pd.DataFrame:
    """A published table as printed: rows x columns of cell texts, in printed order.

    Parameters
    ----------
    paper : {"A", "B"}
    table : str
        E.g. ``"Table 2"``.

    Returns
    -------
    DataFrame
        Indexed by the printed row labels, columns the printed column labels, each
        cell its text as printed; cells the paper leaves empty are empty strings.

    Raises
    ------
    KeyError
        When the paper has no such table.
    """
    df = _records()
    cells = df[(df.paper == paper) & (df.table == table)].drop_duplicates(["row", "column"])
    if cells.empty:
        raise KeyError(f"no published {table} in paper {paper}")
    out = cells.pivot(index="row", columns="column", values="text").fillna("")
    out = out.loc[list(dict.fromkeys(cells.row)), list(dict.fromkeys(cells.column))]
    out.index.name, out.columns.name = None, None
    return out


def flagged(paper: str | None = None) -> pd.DataFrame:
    """The cells whose note flags a typo or an inconsistency in the paper, one row per cell.

    Parameters
    ----------
    paper : {"A", "B"}, optional
        One paper's cells only; both when None.

    Returns
    -------
    DataFrame
        Columns paper, table, row, column, text, note.
    """
    df = _records()
    hit = df[df.note.str.startswith(FLAGS)]
    if paper is not None:
        hit = hit[hit.paper == paper]
    return hit.drop_duplicates(["paper", "table", "row", "column"])[["paper", "table", "row", "column", "text", "note"]]
