"""Baseline-characteristics tables ("Table 1"), built as Paper A and Paper B build theirs.

Continuous variables are summarised as mean and sample SD (``ddof=1``), binary and
categorical ones as count and percentage of the non-missing values; the number missing
gets its own row wherever a column has any. Groups are compared with one-way ANOVA
(`scipy.stats.f_oneway`) or the chi-square test of independence
(`scipy.stats.chi2_contingency`), either each group against the rest of the data
(Paper A) or all groups at once (Paper B). `table1_numbers` gives the raw numbers as
tidy records (``row, variable, column, statistic, value``, the same ``row``/``column``/
``statistic`` vocabulary as `cmrpipe.report.published`); `table1` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

KINDS = ("continuous", "binary", "categorical")
TESTS = ("each_vs_rest", "across_groups", None)


@dataclass(frozen=True)
class Variable:
    """One characteristic: one table row, or one row per level for a categorical.

    Parameters
    ----------
    column : str
        Column of the data frame.
    kind : {"continuous", "binary", "categorical"}
    label : str, optional
        Row label, with its unit (``"Age (years)"``); defaults to `column`.
    level : object
        For ``binary``: the value counted (default True, which also matches 1).
    levels : tuple, optional
        For ``categorical``: the levels in display order; default the sorted observed
        values. Observed values outside `levels` raise ValueError.
    decimals : int
        Decimals of the mean and SD.
    """

    column: str
    kind: str = "continuous"
    label: str | None = None
    level: object = True
    levels: tuple | None = None
    decimals: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"variable {self.column!r}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def name(self) -> str:
        return self.label or self.column


@dataclass(frozen=True)
class Style:
    """Cell printing: mean/SD template, % suffix, commas from `thousands_from`, 0 before p's
    decimal point, Paper A's markers."""

    mean_sd: str
    pct_suffix: str
    thousands_from: float
    p_leading_zero: bool
    markers: bool


STYLES = {  # Paper A: "61.5 (10.1)", "2622 (52.4)", markers; Paper B (AMA): "64.2 ± 7.5", "17,183 (52.0%)"
    "paper_a": Style("{mean} ({sd})", "", float("inf"), True, True),
    "paper_b": Style("{mean} ± {sd}", "%", 10_000, False, False),
}


def _style(style: str | Style) -> Style:
    if isinstance(style, Style):
        return style
    if style not in STYLES:
        raise ValueError(f"style {style!r} is not one of {sorted(STYLES)}")
    return STYLES[style]


def _int(n, style: Style) -> str:
    return f"{int(n):,}" if n >= style.thousands_from else str(int(n))


def _num(x: float, decimals: int) -> str:
    return "NA" if pd.isna(x) else f"{x:.{decimals}f}"


def format_mean_sd(mean: float, sd: float, decimals: int = 1, style: str | Style = "paper_a") -> str:
    """Print a mean and SD; NaN prints as ``NA``.

    >>> format_mean_sd(61.54, 10.06), format_mean_sd(138.2, 18.4, 0, "paper_b")
    ('61.5 (10.1)', '138 ± 18')
    """
    return _style(style).mean_sd.format(mean=_num(mean, decimals), sd=_num(sd, decimals))


def format_count_pct(count: int, pct: float, style: str | Style = "paper_a", decimals: int = 1) -> str:
    """Print a count and its percentage (0-100).

    >>> format_count_pct(2622, 52.41), format_count_pct(17183, 51.96, "paper_b")
    ('2622 (52.4)', '17,183 (52.0%)')
    """
    s = _style(style)
    return f"{_int(count, s)} ({_num(pct, decimals)}{s.pct_suffix if pd.notna(pct) else ''})"


def format_p(p: float, style: str | Style = "paper_a", decimals: int = 3) -> str:
    """Print a p-value: below ``10**-decimals`` as ``<0.001``; NaN (no test) as ``""``.

    >>> format_p(0.0004), format_p(0.04217), format_p(0.04217, "paper_b"), format_p(np.nan)
    ('<0.001', '0.042', '.042', '')
    """
    if pd.isna(p):
        return ""
    text = f"<{10.0 ** -decimals:.{decimals}f}" if p < 10.0 ** -decimals else f"{p:.{decimals}f}"
    return text if _style(style).p_leading_zero else text.replace("0.", ".", 1)


def p_marker(p: float) -> str:
    """Paper A's Table 1 markers: ``*`` p<0.05, ``$`` p<0.01, ``#`` p<0.001, else ``""``.

    >>> [p_marker(p) for p in (0.2, 0.03, 0.005, 1e-5, np.nan)]
    ['', '*', '$', '#', '']
    """
    return "" if pd.isna(p) else "#" if p < 0.001 else "$" if p < 0.01 else "*" if p < 0.05 else ""


def _column(data: pd.DataFrame, column: str) -> pd.Series:
    if column not in data.columns:
        raise ValueError(f"column {column!r} is not in the data (columns: {list(data.columns)})")
    return data[column]


def _sorted(values) -> list:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _members(data: pd.DataFrame, group, groups) -> dict[str, pd.Series]:
    """Group name -> boolean membership, one entry per group; rejects empty groups."""
    if isinstance(group, str):
        col = _column(data, group)
        names = list(groups) if groups is not None else _sorted(col.dropna().unique())
        members = {str(g): (col == g).to_numpy() for g in names}
    elif isinstance(group, Mapping):
        members = {}
        for name, column in group.items():
            col = _column(data, column)
            if not pd.api.types.is_bool_dtype(col):
                raise ValueError(f"sub-cohort {name!r}: column {column!r} must be boolean, not {col.dtype}")
            members[str(name)] = col.fillna(False).to_numpy(dtype=bool)
        if groups is not None:
            raise ValueError("groups: pass only the sub-cohorts wanted, in order, in the group mapping")
    else:
        raise ValueError(f"group must be a column name or a mapping name -> boolean column, not {group!r}")
    for name, m in members.items():
        if not m.any():
            raise ValueError(f"group {name!r} of {group!r} has zero subjects")
    return members


def _levels(v: Variable, s: pd.Series) -> list:
    """The values counted for `v` (``[None]`` for a continuous one), after checking `s`."""
    if v.kind == "continuous":
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            raise ValueError(f"continuous variable {v.column!r} is not numeric (dtype {s.dtype})")
        return [None]
    observed = _sorted(s.dropna().unique())
    if v.kind == "binary":
        if len(observed) > 2 or (len(observed) == 2 and v.level not in observed):
            raise ValueError(f"binary variable {v.column!r}: values {observed} do not pair with level {v.level!r}")
        return [v.level]
    levels = list(v.levels) if v.levels is not None else observed
    extra = [x for x in observed if x not in levels]
    if extra:
        raise ValueError(f"categorical variable {v.column!r}: values {extra} are not in levels {levels}")
    return levels


def _test(v: Variable, s: pd.Series, masks: list, levels: list, yates: bool) -> tuple[str, float, float]:
    """(statistic name, statistic, p) comparing the subjects of `masks` on `s`; NaN if untestable."""
    xs = [x for x in (s[m].dropna() for m in masks) if len(x)]
    if v.kind == "continuous":
        if len(xs) < 2 or sum(map(len, xs)) <= len(xs):  # no within-group degrees of freedom
            return "F", np.nan, np.nan
        res = stats.f_oneway(*[x.to_numpy(dtype=float) for x in xs])
        return "F", float(res.statistic), float(res.pvalue)
    table = np.array([[(x == lv).sum() for x in xs] for lv in levels], dtype=float)
    if v.kind == "binary":  # level vs not level
        table = np.vstack([table, [len(x) for x in xs] - table[0]])
    table = table[table.sum(axis=1) > 0]  # a level nobody has adds nothing (and breaks scipy)
    if min(table.shape) < 2:
        return "chi2", np.nan, np.nan
    res = stats.chi2_contingency(table, correction=yates)
    return "chi2", float(res.statistic), float(res.pvalue)


def _compute(data, group, variables, groups, overall, test, yates):
    """Tidy records, display layout ``[(Variable, level, row, first, last)]``, columns, tests."""
    if test not in TESTS:
        raise ValueError(f"test {test!r} is not one of {TESTS}")
    if isinstance(variables, Mapping):
        variables = [Variable(column, kind) for column, kind in variables.items()]
    members = _members(data, group, groups)
    if test == "across_groups" and (np.sum(list(members.values()), axis=0) > 1).any():
        raise ValueError(f"groups {list(members)} overlap; 'across_groups' needs disjoint groups")
    columns = {"All" if overall is True else str(overall): np.ones(len(data), bool)} if overall else {}
    if set(columns) & set(members):
        raise ValueError(f"the overall column {list(columns)[0]!r} has the name of a group; pass overall='...'")
    columns |= members
    comparisons = {"p": list(members.values())} if test == "across_groups" else {}
    for g, m in members.items() if test == "each_vs_rest" else ():
        if m.all():
            raise ValueError(f"group {g!r} holds every subject; it has no rest to test against")
        comparisons[g] = [m, ~m]
    names = [v.name for v in variables]
    if len(set(names)) < len(names) or "N" in names:
        raise ValueError(f"variable labels must be unique and not 'N': {names}")
    if "p" in columns and "p" in comparisons:
        raise ValueError("a group named 'p' clashes with the across-groups p column")
    recs = [("N", None, c, "n", float(m.sum())) for c, m in columns.items()]
    layout = []
    for v in variables:
        s = _column(data, v.column)
        levels = _levels(v, s)
        rows = [f"{v.name}: {lv}" for lv in levels] if v.kind == "categorical" else [v.name]
        shown = [str(lv) for lv in levels] if v.kind == "categorical" else [""]
        layout += [(v, lv, r, i == 0, i == len(rows) - 1) for i, (lv, r) in enumerate(zip(shown, rows))]
        for c, m in columns.items():
            x = s[m].dropna()
            recs += [(v.name, v.column, c, "n", len(x)), (v.name, v.column, c, "n_missing", m.sum() - len(x))]
            if v.kind == "continuous":
                xf = x.to_numpy(dtype=float)
                recs += [(v.name, v.column, c, "mean", xf.mean() if len(xf) else np.nan),
                         (v.name, v.column, c, "sd", xf.std(ddof=1) if len(xf) > 1 else np.nan)]
            for lv, r in zip(levels, rows) if v.kind != "continuous" else ():
                k = (x == lv).sum()
                recs += [(r, v.column, c, "count", k), (r, v.column, c, "pct", 100 * k / len(x) if len(x) else np.nan)]
        for c, masks in comparisons.items():
            name, stat, p = _test(v, s, masks, levels, yates)
            recs += [(v.name, v.column, c, name, stat), (v.name, v.column, c, "p", p)]
    tidy = pd.DataFrame(recs, columns=["row", "variable", "column", "statistic", "value"])
    return tidy.astype({"value": float}), layout, list(columns), list(comparisons)


def table1_numbers(data: pd.DataFrame, group: str | Mapping[str, str],
                   variables: Sequence[Variable] | Mapping[str, str], *, groups: Sequence | None = None,
                   overall: bool | str = True, test: str | None = "each_vs_rest", yates: bool = True) -> pd.DataFrame:
    """The raw numbers of `table1` as tidy records (arguments as for `table1`).

    Returns
    -------
    DataFrame with columns ``row, variable, column, statistic, value``
        ``row`` is the label (``"Smoking: never"`` for a level, ``"N"`` for group sizes);
        ``column`` a group, the overall column, or ``"p"`` for an across-groups test;
        ``statistic`` one of ``n`` (non-missing), ``n_missing``, ``mean``, ``sd``,
        ``count``, ``pct`` (0-100, of the non-missing), ``F``, ``chi2``, ``p``.
        The ``F``/``chi2``/``p`` of each-vs-rest sit in the group's column.
    """
    return _compute(data, group, variables, groups, overall, test, yates)[0]


def table1(data: pd.DataFrame, group: str | Mapping[str, str], variables: Sequence[Variable] | Mapping[str, str],
           *, groups: Sequence | None = None, overall: bool | str = True, test: str | None = "each_vs_rest",
           style: str | Style = "paper_a", yates: bool = True) -> pd.DataFrame:
    """Baseline-characteristics table: one column per group, one row per variable or level.

    Parameters
    ----------
    data : DataFrame, (n_subjects, ...)
        One row per subject. Never modified.
    group : str or mapping of str to str
        A column whose values split subjects into disjoint groups, or (Paper A, whose
        sub-cohorts overlap) a mapping group name -> boolean membership column. Rows in
        no group (a missing group value) still count in the overall column and the rests.
    variables : sequence of Variable, or mapping of column -> kind
    groups : sequence, optional
        For a column `group`: which values, in order (default: all, sorted); a mapping
        `group` picks and orders its sub-cohorts itself. A group with no subject raises.
    overall : bool or str
        Add a column of every row of `data` (named "All", or this string).
    test : {"each_vs_rest", "across_groups", None}
        ``each_vs_rest``: each group against all other rows of `data` (Paper A's
        sub-cohort against its complement); ``across_groups``: one test over all
        (disjoint) groups. ANOVA for continuous, chi-square for the rest.
    style : {"paper_a", "paper_b"} or Style
        Paper A prints ``61.5 (10.1)``, ``2622 (52.4)`` and appends its ``* $ #`` markers
        to each-vs-rest cells; Paper B prints ``64.2 ± 7.5`` and ``17,183 (52.0%)``.
    yates : bool
        Yates' continuity correction for 2x2 tables (chi-square with one degree of
        freedom; larger tables are never corrected). Default True, the default of R's
        ``chisq.test`` (Paper B's analysis software) and of `scipy.stats.chi2_contingency`;
        pass False for the uncorrected Pearson statistic that SAS and SPSS list first.

    Returns
    -------
    DataFrame indexed by (variable, level)
        Group columns headed ``"name (N = n)"``; p-value columns ``"p (name vs rest)"``
        or ``"p"``. A ``Missing`` row follows any variable with missing values.

    Examples
    --------
    >>> df = pd.DataFrame({"set": ["train"] * 3 + ["holdout"] * 2,
    ...                    "age": [60., 62., 64., 70., 72.], "female": [1, 0, 1, 1, 1]})
    >>> t = table1(df, "set", [Variable("age", label="Age (years)"), Variable("female", "binary")],
    ...            groups=["train", "holdout"], test="across_groups", style="paper_b")
    >>> t.to_dict("list")  # doctest: +NORMALIZE_WHITESPACE
    {'All (N = 5)': ['65.6 ± 5.2', '4 (80.0%)'], 'train (N = 3)': ['62.0 ± 2.0', '2 (66.7%)'],
     'holdout (N = 2)': ['71.0 ± 1.4', '2 (100.0%)'], 'p': ['.012', '1.000']}
    """
    s = _style(style)
    tidy, layout, columns, comparisons = _compute(data, group, variables, groups, overall, test, yates)
    num = tidy.set_index(["row", "column", "statistic"])["value"]
    head = {c: f"{c} (N = {_int(num[('N', c, 'n')], s)})" for c in columns}
    out = {}
    for v, level, row, first, last in layout:
        cells = {}
        for c in columns:
            if v.kind == "continuous":
                cell = format_mean_sd(num[(row, c, "mean")], num[(row, c, "sd")], v.decimals, s)
            else:
                cell = format_count_pct(num[(row, c, "count")], num[(row, c, "pct")], s)
            if first and s.markers and c in comparisons:
                cell = f"{cell} {p_marker(num[(v.name, c, 'p')])}".rstrip()
            cells[head[c]] = cell
        for c in comparisons:
            cells["p" if c == "p" else f"p ({c} vs rest)"] = format_p(num[(v.name, c, "p")], s) if first else ""
        out[(v.name, level)] = cells
        missing = {c: num[(v.name, c, "n_missing")] for c in columns}
        if last and any(missing.values()):
            out[(v.name, "Missing")] = {head[c]: _int(missing[c], s) for c in columns}
    table = pd.DataFrame.from_dict(out, orient="index").fillna("")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["variable", "level"])
    return table
