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
