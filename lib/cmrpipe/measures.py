"""Clinical measures: body surface area, volumes, mass, ejection fraction, indexing.

Arrays in, numbers out; units in every name (DESIGN.md, STYLE.md).
"""

from __future__ import annotations

import numpy as np

MYOCARDIAL_DENSITY_G_PER_ML = 1.05


def dubois_bsa_m2(weight_kg, height_cm):
    """DuBois body surface area, m2: 0.007184 x weight_kg^0.425 x height_cm^0.725.

    Parameters
    ----------
    weight_kg, height_cm : float or array

    Returns
    -------
    float or array
        Body surface area, m2.

    Examples
    --------
    The tabulated value for 70 kg and 170 cm is 1.81 m2:

    >>> round(float(dubois_bsa_m2(70.0, 170.0)), 2)
    1.81
    """
    return 0.007184 * np.asarray(weight_kg, float) ** 0.425 * np.asarray(height_cm, float) ** 0.725


def polygon_area_mm2(points_rc: np.ndarray, pixel_spacing_mm: tuple[float, float]) -> float:
    """Area enclosed by a closed contour (shoelace formula), mm2.

    Parameters
    ----------
    points_rc : (n, 2) float array
        Contour points (row, col) in pixels, in order; the last joins the first.
    pixel_spacing_mm : (2,) float
        Row and column spacing, mm.

    Returns
    -------
    float

    Examples
    --------
    A 10 x 20 pixel rectangle of 1.5 mm pixels:

    >>> polygon_area_mm2(np.array([[0, 0], [10, 0], [10, 20], [0, 20]]), (1.5, 1.5))
    450.0
    """
    p = np.asarray(points_rc, float) * np.asarray(pixel_spacing_mm, float)
    x, y = p[:, 0], p[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def slice_summation_ml(areas_mm2, pitch_mm: float) -> float:
    """Volume by slice summation (Simpson's rule of the discs): sum of areas x slice pitch, ml.

    The pitch is the distance between neighbouring slices (thickness + gap), not the
    slice thickness.

    Examples
    --------
    >>> slice_summation_ml([1000.0, 2000.0], pitch_mm=10.0)
    30.0
    """
    return float(np.sum(np.asarray(areas_mm2, float)) * pitch_mm / 1000.0)


def mask_volume_ml(masks: np.ndarray, pixel_spacing_mm: tuple[float, float], pitch_mm: float) -> float:
    """Volume of a labelled region by slice summation of a short-axis stack, ml.

    Parameters
    ----------
    masks : (slices, rows, cols) bool array
        The region on each slice (every slice counts; missing slices are the caller's to flag).
    pixel_spacing_mm : (2,) float
        Row and column spacing, mm.
    pitch_mm : float
        Distance between slice centres (thickness + gap), mm.

    Examples
    --------
    Three slices of a 10 x 10 pixel square, 2 mm pixels, 10 mm apart: 3 x 400 mm2 x 10 mm:

    >>> m = np.zeros((3, 20, 20), bool); m[:, 5:15, 5:15] = True
    >>> mask_volume_ml(m, (2.0, 2.0), 10.0)
    12.0
    """
    masks = np.asarray(masks, bool)
    areas_mm2 = masks.reshape(len(masks), -1).sum(axis=1) * float(np.prod(pixel_spacing_mm))
    return slice_summation_ml(areas_mm2, pitch_mm)


def ejection_fraction_pct(edv_ml: float, esv_ml: float) -> float:
    """LVEF = (EDV - ESV) / EDV x 100, as Paper A defines it (on indexed or plain volumes alike).

    Examples
    --------
    >>> ejection_fraction_pct(150.0, 60.0)
    60.0
    """
    if not edv_ml > 0:
        return float("nan")
    return float(100.0 * (edv_ml - esv_ml) / edv_ml)


def lv_mass_g(myocardium_ml: float, density_g_per_ml: float = MYOCARDIAL_DENSITY_G_PER_ML) -> float:
    """LV mass from myocardial volume, g (density 1.05 g/ml).

    Examples
    --------
    >>> lv_mass_g(100.0)
    105.0
    """
    return float(myocardium_ml * density_g_per_ml)


LV_MEASURE_NAMES = ("lvedv_ml", "lvesv_ml", "lvef_pct", "lv_mass_g", "lvedvi_ml_m2", "lvesvi_ml_m2", "lvmi_g_m2")
"""The keys of :func:`lv_measures`, in order."""


def lv_measures(labels_ed: np.ndarray, labels_es: np.ndarray, pixel_spacing_mm: tuple[float, float],
                pitch_mm: float, bsa_m2: float, cavity: int = 1, myocardium: int = 2) -> dict:
    """EDV, ESV, EF, LV mass (from ED) and their indexed values from ED and ES label stacks.

    Parameters
    ----------
    labels_ed, labels_es : (slices, rows, cols) int arrays
        Label maps (``cavity`` and ``myocardium`` codes, as in :mod:`cmrpipe.io.labels`).
    pixel_spacing_mm : (2,) float
    pitch_mm : float
    bsa_m2 : float
        Body surface area for indexing (e.g. :func:`dubois_bsa_m2`).

    Returns
    -------
    dict
        lvedv_ml, lvesv_ml, lvef_pct, lv_mass_g, lvedvi_ml_m2, lvesvi_ml_m2, lvmi_g_m2.
        Papillary muscles are wherever the labels put them (the cavity, in this project).
    """
    edv = mask_volume_ml(np.asarray(labels_ed) == cavity, pixel_spacing_mm, pitch_mm)
    esv = mask_volume_ml(np.asarray(labels_es) == cavity, pixel_spacing_mm, pitch_mm)
    mass = lv_mass_g(mask_volume_ml(np.asarray(labels_ed) == myocardium, pixel_spacing_mm, pitch_mm))
    values = (edv, esv, ejection_fraction_pct(edv, esv), mass, edv / bsa_m2, esv / bsa_m2, mass / bsa_m2)
    return dict(zip(LV_MEASURE_NAMES, values))


LVH_LVMI_G_M2 = {"M": 72.0, "F": 55.0}
"""Paper B's LVH thresholds: LV mass index > 72 g/m2 in men and > 55 g/m2 in women."""


def lvh(lvmi_g_m2, sex) -> np.ndarray:
    """LV hypertrophy by Paper B's sex-specific LV mass index thresholds (strictly above).

    Parameters
    ----------
    lvmi_g_m2 : (n,) float array
    sex : (n,) array of "M" / "F"

    Examples
    --------
    >>> lvh([72.0, 73.0, 56.0, 50.0], ["M", "M", "F", "F"]).tolist()
    [False, True, True, False]
    """
    lvmi = np.asarray(lvmi_g_m2, float)
    threshold = np.array([LVH_LVMI_G_M2[s] for s in np.asarray(sex)], float)
    return lvmi > threshold


def lvh_percentile(lv_mass, sex, percentile: float = 90.0) -> np.ndarray:
    """LV hypertrophy as LV mass above the sex-specific 90th percentile of the cohort (Paper B's alternative).

    Examples
    --------
    >>> mass = np.r_[np.arange(1.0, 11.0), np.arange(101.0, 111.0)]
    >>> lvh_percentile(mass, ["F"] * 10 + ["M"] * 10).nonzero()[0].tolist()
    [9, 19]
    """
    mass = np.asarray(lv_mass, float)
    sex = np.asarray(sex)
    out = np.zeros(len(mass), bool)
    for s in np.unique(sex):
        group = sex == s
        out[group] = mass[group] > np.nanpercentile(mass[group], percentile)
    return out
