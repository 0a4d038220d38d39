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
