"""Agreement between two methods measuring the same subjects (Bland-Altman, Pearson, MAE).

Paper A's Table 4 and Figure 6 compare automatic with manual measures this way: the
mean difference (bias, ``a - b``) with its 95% limits of agreement (mean ± 1.96 sample
SD of the differences), the regression of the differences on the means (a nonzero slope
is a proportional error), Pearson's correlation and the mean absolute difference.

Every function drops the pairs where either value is NaN and returns NaN, not an
exception, when too few pairs are left to estimate a statistic.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

LOA_Z = 1.96
"""Normal quantile of the 95% limits of agreement (Bland and Altman's paper rounds it to 2)."""

TABLE_COLUMNS = ("n", "r", "p", "mean_diff", "sd_diff", "loa_low", "loa_high", "slope", "slope_p", "mae")


def paired_finite(a, b) -> tuple[np.ndarray, np.ndarray]:
    """Keep the pairs where neither value is NaN.

    Parameters
    ----------
    a, b : (n,) array-like of float
        Paired measurements of the same subjects by two methods.

    Returns
    -------
    a, b : (m,) float arrays
        The pairs without NaN, in their original order (``m <= n``).

    Examples
    --------
    >>> paired_finite([1.0, np.nan, 3.0], [4.0, 5.0, np.nan])
    (array([1.]), array([4.]))
    """
    a = np.asarray(a, dtype=float).ravel()
    b = np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired arrays differ in length: {a.size} != {b.size}")
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def bland_altman(a, b) -> dict:
    """Bland-Altman bias, 95% limits of agreement and proportional-error trend of ``a - b``.

    Parameters
    ----------
    a, b : (n,) array-like of float
        Paired measurements, in the same unit; pairs with a NaN are dropped.

    Returns
    -------
    dict
        ``n`` (pairs used), ``mean_diff`` (mean of ``a - b``), ``sd_diff`` (sample SD,
        ``ddof=1``), ``loa_low`` / ``loa_high`` (``mean_diff ∓ 1.96 sd_diff``), and
        ``slope`` / ``slope_p``: slope and two-sided p value of the least-squares line
        of the differences on the means ``(a + b) / 2`` (`scipy.stats.linregress`).
        Values are NaN when fewer than 2 pairs remain (the slope needs 3 pairs and
        means that are not all equal).

    Examples
    --------
    >>> ba = bland_altman([10.0, 12.0, 14.0], [9.0, 12.0, 12.0])
    >>> ba["n"], ba["mean_diff"], ba["sd_diff"]
    (3, 1.0, 1.0)
    >>> round(ba["loa_low"], 2), round(ba["loa_high"], 2)
    (-0.96, 2.96)
    """
    a, b = paired_finite(a, b)
    n = int(a.size)
    out = {"n": n, "mean_diff": np.nan, "sd_diff": np.nan, "loa_low": np.nan,
           "loa_high": np.nan, "slope": np.nan, "slope_p": np.nan}
    if n < 2:
        return out
    diff = a - b
    mean_diff = float(diff.mean())
    sd_diff = float(diff.std(ddof=1))
    out.update(mean_diff=mean_diff, sd_diff=sd_diff,
               loa_low=mean_diff - LOA_Z * sd_diff, loa_high=mean_diff + LOA_Z * sd_diff)
    out.update(_difference_trend((a + b) / 2.0, diff))
    return out


def _difference_trend(means: np.ndarray, diff: np.ndarray) -> dict:
    """Slope and p value of `diff` regressed on `means`; NaN if it cannot be estimated."""
    if means.size < 3 or np.ptp(means) == 0:
        return {"slope": np.nan, "slope_p": np.nan}
    fit = stats.linregress(means, diff)
    return {"slope": float(fit.slope), "slope_p": float(fit.pvalue)}


def pearson(a, b) -> dict:
    """Pearson correlation of paired measurements.

    Parameters
    ----------
    a, b : (n,) array-like of float
        Paired measurements; pairs with a NaN are dropped.

    Returns
    -------
    dict
        ``n`` (pairs used), ``r`` and two-sided ``p`` (`scipy.stats.pearsonr`); ``r``
        and ``p`` are NaN with fewer than 3 pairs or when either method is constant.

    Examples
    --------
    >>> res = pearson([1.0, 2.0, 3.0, np.nan], [1.0, 3.0, 2.0, 5.0])
    >>> res["n"], round(res["r"], 6)
    (3, 0.5)
    """
    a, b = paired_finite(a, b)
    n = int(a.size)
    if n < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"n": n, "r": np.nan, "p": np.nan}
    r, p = stats.pearsonr(a, b)
    return {"n": n, "r": float(r), "p": float(p)}


def mae(a, b) -> float:
    """Mean absolute difference ``mean(|a - b|)``, pairs with a NaN dropped.

    Parameters
    ----------
    a, b : (n,) array-like of float
        Paired measurements, in the same unit.

    Returns
    -------
    float
        In the unit of `a` and `b`; NaN when no pair remains.

    Examples
    --------
    >>> mae([1.0, 2.0, np.nan], [2.0, 0.0, 5.0])
    1.5
    """
    a, b = paired_finite(a, b)
    if a.size == 0:
        return float("nan")
    return float(np.abs(a - b).mean())


def agreement_table(pairs: Mapping[str, tuple]) -> pd.DataFrame:
    """One row of agreement statistics per measure.

    Parameters
    ----------
    pairs : mapping of str to (a, b)
        Measure name (``"lvedv_ml"``) to its paired arrays, method ``a`` then ``b``.

    Returns
    -------
    pandas.DataFrame
        Indexed by measure name, columns ``n, r, p, mean_diff, sd_diff, loa_low,
        loa_high, slope, slope_p, mae`` (see `pearson`, `bland_altman`, `mae`).

    Examples
    --------
    >>> t = agreement_table({"x_ml": ([1.0, 2.0, 3.0], [1.5, 2.5, 3.0])})
    >>> t.round(4).loc["x_ml", ["n", "mean_diff", "mae"]].tolist()
    [3.0, -0.3333, 0.3333]
    """
    rows = {}
    for name, (a, b) in pairs.items():
        ba = bland_altman(a, b)
        rows[name] = {**pearson(a, b), **{k: ba[k] for k in TABLE_COLUMNS[3:9]}, "mae": mae(a, b)}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(TABLE_COLUMNS))
    table["n"] = table["n"].astype(int)
    table.index.name = "measure"
    return table


def bland_altman_axes(ax, a, b, title: str | None = None, units: str = "") -> dict:
    """Draw a Bland-Altman plot of ``a - b`` against ``(a + b) / 2`` on `ax`.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes to draw on.
    a, b : (n,) array-like of float
        Paired measurements; pairs with a NaN are dropped.
    title : str, optional
        Axes title.
    units : str
        Unit appended to the axis labels (``"ml"`` gives ``"difference (ml)"``).

    Returns
    -------
    dict
        The result of `bland_altman`. The plot has the points, a solid line at the mean
        difference and dashed lines at the limits of agreement (lines are skipped
        where the statistic is NaN).
    """
    ba = bland_altman(a, b)
    a, b = paired_finite(a, b)
    ax.scatter((a + b) / 2.0, a - b, s=12, color="0.25", zorder=3)
    if not np.isnan(ba["mean_diff"]):
        ax.axhline(ba["mean_diff"], color="C0", linestyle="-", linewidth=1.2)
        for key in ("loa_low", "loa_high"):
            ax.axhline(ba[key], color="C3", linestyle="--", linewidth=1.0)
    suffix = f" ({units})" if units else ""
    ax.set_xlabel(f"mean of the two{suffix}")
    ax.set_ylabel(f"difference{suffix}")
    if title:
        ax.set_title(title)
    return ba
