"""Image geometry: DICOM image planes and the mapping between pixels and patient space.

Conventions (DESIGN.md): image points are ``(row, col)`` in pixels, zero-based,
at pixel centres; patient points are in mm in the DICOM patient frame (LPS). A
plane is given as DICOM gives it: ``ImagePositionPatient`` (the centre of the first
transmitted pixel), ``ImageOrientationPatient`` (the direction of increasing
column index, then of increasing row index) and ``PixelSpacing`` (the distance
between rows, then between columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def plane_affine(position_lps: np.ndarray, orientation: np.ndarray, pixel_spacing_mm: tuple[float, float],
                 slice_step_mm: float = 1.0) -> np.ndarray:
    """The homogeneous affine from ``(row, col, k)`` indices to LPS mm.

    Parameters
    ----------
    position_lps : (3,) float array
        ImagePositionPatient, mm.
    orientation : (6,) float array
        ImageOrientationPatient: row direction cosines (along increasing column),
        then column direction cosines (along increasing row).
    pixel_spacing_mm : (2,) float
        PixelSpacing: row spacing (between rows), column spacing (between columns).
    slice_step_mm : float
        Length of a unit step of the third index along the plane normal
        (row direction x column direction), e.g. the slice pitch of a stack.

    Returns
    -------
    (4, 4) float array
        ``affine_ijk_to_lps`` with ``ijk = (row, col, k)``.

    Examples
    --------
    >>> a = plane_affine([10., 20., 30.], [1, 0, 0, 0, 1, 0], (2.0, 3.0), 8.0)
    >>> points_ijk_to_lps(np.array([[1., 1., 1.]]), a)
    array([[13., 22., 38.]])
    """
    o = np.asarray(orientation, float)
    along_col, along_row = o[:3], o[3:]
    normal = np.cross(along_col, along_row)
    affine = np.eye(4)
    affine[:3, 0] = along_row * pixel_spacing_mm[0]
    affine[:3, 1] = along_col * pixel_spacing_mm[1]
    affine[:3, 2] = normal * slice_step_mm
    affine[:3, 3] = np.asarray(position_lps, float)
    return affine


def points_ijk_to_lps(points_ijk: np.ndarray, affine_ijk_to_lps: np.ndarray) -> np.ndarray:
    """Map voxel indices to DICOM patient coordinates.

    Parameters
    ----------
    points_ijk : (..., 3) float array
        Indices along array axes 0, 1, 2 (zero-based).
    affine_ijk_to_lps : (4, 4) float array
        Homogeneous voxel-to-patient affine, in mm.

    Returns
    -------
    (..., 3) float array
        Points in the LPS patient frame, in mm.

    Examples
    --------
    >>> points_ijk_to_lps(np.ones((1, 3)), np.diag([2., 2., 8., 1.]))
    array([[2., 2., 8.]])
    """
    p = np.asarray(points_ijk, float)
    a = np.asarray(affine_ijk_to_lps, float)
    return p @ a[:3, :3].T + a[:3, 3]


def points_lps_to_ijk(points_lps: np.ndarray, affine_ijk_to_lps: np.ndarray) -> np.ndarray:
    """Map DICOM patient coordinates to (fractional) voxel indices; inverse of :func:`points_ijk_to_lps`.

    Examples
    --------
    >>> points_lps_to_ijk(np.array([[2., 2., 8.]]), np.diag([2., 2., 8., 1.]))
    array([[1., 1., 1.]])
    """
    p = np.asarray(points_lps, float)
    a = np.asarray(affine_ijk_to_lps, float)
    return np.linalg.solve(a[:3, :3], (p - a[:3, 3]).T).T


@dataclass(frozen=True)
class ImagePlane:
    """One image plane as DICOM describes it, with its slice thickness.

    Attributes
    ----------
    position_lps : (3,) tuple
        ImagePositionPatient, mm.
    orientation : (6,) tuple
        ImageOrientationPatient.
    pixel_spacing_mm : (2,) tuple
        PixelSpacing (between rows, between columns).
    rows, cols : int
        Matrix size.
    thickness_mm : float
        SliceThickness.
    """

    position_lps: tuple[float, float, float]
    orientation: tuple[float, ...]
    pixel_spacing_mm: tuple[float, float]
    rows: int
    cols: int
    thickness_mm: float

    @property
    def affine_ijk_to_lps(self) -> np.ndarray:
        """The (row, col, k) -> LPS affine of the plane (unit step along the normal)."""
        return plane_affine(self.position_lps, self.orientation, self.pixel_spacing_mm)

    @property
    def normal(self) -> np.ndarray:
        """Unit normal, row direction x column direction (the direction of increasing slice position)."""
        o = np.asarray(self.orientation, float)
        return np.cross(o[:3], o[3:])

    @classmethod
    def centred(cls, centre_lps: np.ndarray, along_col: np.ndarray, along_row: np.ndarray,
                pixel_spacing_mm: tuple[float, float], rows: int, cols: int, thickness_mm: float) -> "ImagePlane":
        """The plane whose matrix is centred on ``centre_lps`` (unit direction vectors given)."""
        x = np.asarray(along_col, float) / np.linalg.norm(along_col)
        y = np.asarray(along_row, float) / np.linalg.norm(along_row)
        corner = (np.asarray(centre_lps, float) - (rows - 1) / 2 * pixel_spacing_mm[0] * y
                  - (cols - 1) / 2 * pixel_spacing_mm[1] * x)
        return cls(tuple(map(float, corner)), tuple(map(float, np.r_[x, y])),
                   (float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1])), int(rows), int(cols),
                   float(thickness_mm))
