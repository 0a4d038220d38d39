"""Writing images and label maps as NIfTI, placed so viewers overlay them on the scans.

Stacks in this project are arrays indexed ``(row, col, slice)``, optionally with a
fourth ``frame`` axis, with an affine ``affine_ijk_to_lps`` from homogeneous
``(row, col, slice, 1)`` indices to DICOM patient LPS millimetres. NIfTI's world is RAS
(+x towards the patient's right, +y anterior; LPS has +x left, +y posterior), so its
affine is ``diag(-1, -1, 1, 1) @ affine_ijk_to_lps``. Array axes 0, 1, 2 stay NIfTI
axes i, j, k, so 3D Slicer, ITK-SNAP and ITK put every voxel at the same patient
position as the DICOM does. Both sform and qform are written (code 1, scanner); the
qform is exact for the rotation-times-spacing affines of DICOM stacks.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
"""Homogeneous flip from DICOM patient LPS to NIfTI RAS (its own inverse)."""

XFORM_SCANNER = 1
"""NIfTI ``qform_code`` / ``sform_code`` for scanner-based anatomical coordinates."""

KEPT_DTYPES = tuple(np.dtype(t) for t in
                    (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.float32))
"""Data types written unchanged; others are converted by `nifti_dtype`."""


def _checked_affine(affine_ijk_to_lps) -> np.ndarray:
    """Return the affine as a float (4, 4) array, or raise ValueError if it is not one."""
    affine = np.asarray(affine_ijk_to_lps, dtype=float)
    if affine.shape != (4, 4):
        raise ValueError(f"affine_ijk_to_lps must be 4x4, got shape {affine.shape}")
    if not np.all(np.isfinite(affine)):
        raise ValueError("affine_ijk_to_lps has non-finite entries")
    if not np.allclose(affine[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError(f"affine_ijk_to_lps last row must be [0, 0, 0, 1], got {affine[3]}")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError("affine_ijk_to_lps is singular (a voxel axis has zero length "
                         "or two axes are parallel)")
    return affine


def nifti_affine(affine_ijk_to_lps) -> np.ndarray:
    """NIfTI (RAS) voxel-to-world affine of a stack with the given LPS affine.

    Parameters
    ----------
    affine_ijk_to_lps : (4, 4) float array
        Homogeneous ``(row, col, slice, 1)`` index to DICOM patient LPS affine, in mm.

    Returns
    -------
    (4, 4) float array
        ``diag(-1, -1, 1, 1) @ affine_ijk_to_lps``: index to RAS, in mm.

    Raises
    ------
    ValueError
        If the affine is not a finite, invertible 4x4 homogeneous matrix.

    Examples
    --------
    >>> affine_ijk_to_lps = np.array([[2.0, 0.0, 0.0, -100.0],
    ...                               [0.0, 3.0, 0.0, 50.0],
    ...                               [0.0, 0.0, 8.0, 20.0],
    ...                               [0.0, 0.0, 0.0, 1.0]])
    >>> nifti_affine(affine_ijk_to_lps) + 0.0
    array([[ -2.,   0.,   0., 100.],
           [  0.,  -3.,   0., -50.],
           [  0.,   0.,   8.,  20.],
           [  0.,   0.,   0.,   1.]])
    """
    return LPS_TO_RAS @ _checked_affine(affine_ijk_to_lps)


def nifti_dtype(dtype) -> np.dtype:
    """Data type an array of `dtype` is written with.

    Parameters
    ----------
    dtype : numpy dtype-like

    Returns
    -------
    numpy.dtype
        Unchanged for 8-, 16- and 32-bit integers and float32; ``bool`` -> uint8;
        other floats -> float32; 64-bit integers -> int32 (many viewers cannot read
        64-bit NIfTI; `write_nifti` checks that the values fit).

    Examples
    --------
    >>> nifti_dtype(np.uint8), nifti_dtype(np.float64), nifti_dtype(bool), nifti_dtype(np.int64)
    (dtype('uint8'), dtype('float32'), dtype('uint8'), dtype('int32'))
    """
    dtype = np.dtype(dtype)
    if dtype in KEPT_DTYPES:
        return dtype
    if dtype == np.bool_:
        return np.dtype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        return np.dtype(np.float32)
    if np.issubdtype(dtype, np.integer):
        return np.dtype(np.int32)
    raise ValueError(f"cannot write data of dtype {dtype} as NIfTI")


def _as_nifti_data(data) -> np.ndarray:
    """Convert `data` to its NIfTI dtype, checking that integer values fit."""
    data = np.asarray(data)
    if data.ndim not in (3, 4):
        raise ValueError(f"data must be (rows, cols, slices[, frames]), got {data.ndim} dims "
                         f"with shape {data.shape}")
    dtype = nifti_dtype(data.dtype)
    if np.issubdtype(dtype, np.integer) and data.dtype != np.bool_ and data.size:
        info = np.iinfo(dtype)
        if data.min() < info.min or data.max() > info.max:
            raise ValueError(f"{data.dtype} values [{data.min()}, {data.max()}] do not fit {dtype}")
    return data.astype(dtype, copy=False)


def nifti_image(data, affine_ijk_to_lps, *, frame_interval_ms: float | None = None
                ) -> nib.Nifti1Image:
    """Build the NIfTI image `write_nifti` writes, without touching disk.

    Parameters and errors as in `write_nifti`.

    Returns
    -------
    nibabel.Nifti1Image
        sform and qform set to `nifti_affine` with code 1 (scanner), units mm and ms.

    Examples
    --------
    >>> img = nifti_image(np.zeros((4, 5, 2, 3), np.int16), np.diag([1.5, 1.5, 8.0, 1.0]),
    ...                   frame_interval_ms=40.0)
    >>> [float(z) for z in img.header.get_zooms()], img.header.get_xyzt_units()
    ([1.5, 1.5, 8.0, 40.0], ('mm', 'msec'))
    """
    affine_ras = nifti_affine(affine_ijk_to_lps)
    array = _as_nifti_data(data)
    if frame_interval_ms is not None and array.ndim != 4:
        raise ValueError("frame_interval_ms given for 3D data; it applies to a frame axis only")
    if frame_interval_ms is not None and not frame_interval_ms > 0:
        raise ValueError(f"frame_interval_ms must be positive, got {frame_interval_ms}")
    header = nib.Nifti1Header()
    header.set_data_dtype(array.dtype)
    img = nib.Nifti1Image(array, affine_ras, header=header)
    img.set_sform(affine_ras, code=XFORM_SCANNER)
    img.set_qform(affine_ras, code=XFORM_SCANNER)
    img.header.set_xyzt_units(xyz="mm", t="msec")
    if array.ndim == 4:
        zooms = img.header.get_zooms()[:3]
        img.header.set_zooms((*zooms, float(frame_interval_ms or 1.0)))
    return img


def write_nifti(path, data, affine_ijk_to_lps, *, frame_interval_ms: float | None = None
                ) -> Path:
    """Write a stack or a label map as a gzipped NIfTI file in scanner coordinates.

    Parameters
    ----------
    path : str or Path
        Output file, ending in ``.nii.gz``; parent folders are made.
    data : (rows, cols, slices) or (rows, cols, slices, frames) array
        Image or label map indexed like the stack. The dtype is kept (uint8 labels stay
        uint8, int16 images int16) except as `nifti_dtype` says (float64 -> float32).
    affine_ijk_to_lps : (4, 4) float array
        Homogeneous ``(row, col, slice, 1)`` index to DICOM patient LPS affine, in mm.
    frame_interval_ms : float, optional
        Time between frames, stored as ``pixdim[4]`` (4D data only; 1.0 if not given).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError
        For data that is not 3D or 4D, an affine that is not an invertible 4x4
        homogeneous matrix, a path not ending in ``.nii.gz``, integer values outside
        int32 for 64-bit input, or a frame interval with 3D data.
    """
    path = Path(path)
    if not path.name.endswith(".nii.gz"):
        raise ValueError(f"{path}: NIfTI output must end in .nii.gz")
    img = nifti_image(data, affine_ijk_to_lps, frame_interval_ms=frame_interval_ms)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path
