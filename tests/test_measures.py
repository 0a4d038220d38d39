"""Clinical measures against closed forms: a cylinder and an ellipsoidal shell."""

import numpy as np
import pytest

from cmrpipe import measures


def _grid(spacing_mm, pitch_mm, half_mm, length_mm):
    r = np.arange(-half_mm, half_mm, spacing_mm) + spacing_mm / 2
    z = np.arange(0.0, length_mm, pitch_mm) + pitch_mm / 2  # slice centres
    zz, yy, xx = np.meshgrid(z, r, r, indexing="ij")
    return zz, yy, xx


def test_cylinder_volume_by_slice_summation():
    radius, length, spacing, pitch = 25.0, 80.0, 0.25, 10.0
    zz, yy, xx = _grid(spacing, pitch, 30.0, length)
    mask = xx**2 + yy**2 <= radius**2
    exact = np.pi * radius**2 * length / 1000
    assert measures.mask_volume_ml(mask, (spacing, spacing), pitch) == pytest.approx(exact, rel=0.005)


def test_ellipsoid_shell_volumes_mass_and_ef():
    """A half-ellipsoidal cavity in a shell: volumes against 2/3 pi a^2 c, EF against two shapes."""
    spacing, pitch = 0.25, 2.0
    a_endo, c_endo, a_epi, c_epi = 25.0, 70.0, 32.0, 76.0
    zz, yy, xx = _grid(spacing, pitch, 35.0, 80.0)
    inside = lambda a, c: (xx**2 + yy**2) / a**2 + ((80.0 - zz) / c) ** 2 <= 1  # base at z = 80, apex below
    labels_ed = np.where(inside(a_endo, c_endo), 1, np.where(inside(a_epi, c_epi), 2, 0))
    labels_es = np.where(inside(0.7 * a_endo, 0.9 * c_endo), 1, 0)
    out = measures.lv_measures(labels_ed, labels_es, (spacing, spacing), pitch, bsa_m2=2.0)
    half = lambda a, c: 2 / 3 * np.pi * a**2 * c / 1000
    assert out["lvedv_ml"] == pytest.approx(half(a_endo, c_endo), rel=0.01)
    assert out["lvesv_ml"] == pytest.approx(half(0.7 * a_endo, 0.9 * c_endo), rel=0.01)
    assert out["lv_mass_g"] == pytest.approx(1.05 * (half(a_epi, c_epi) - half(a_endo, c_endo)), rel=0.02)
    assert out["lvef_pct"] == pytest.approx(100 * (1 - 0.49 * 0.9), abs=0.5)
    assert out["lvmi_g_m2"] == pytest.approx(out["lv_mass_g"] / 2.0)


def test_pitch_not_thickness():
    """MESA's 6 mm slices with a 4 mm gap: the volume uses the 10 mm pitch."""
    mask = np.ones((5, 10, 10), bool)
    assert measures.mask_volume_ml(mask, (1.0, 1.0), pitch_mm=10.0) == pytest.approx(5 * 100 * 10 / 1000)


def test_ejection_fraction_of_an_empty_cavity_is_nan():
    assert np.isnan(measures.ejection_fraction_pct(0.0, 0.0))
