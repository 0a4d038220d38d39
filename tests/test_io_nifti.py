"""Tests for cmrpipe.io.nifti: files read back by SimpleITK (an independent LPS reader)
and by nibabel land every voxel where affine_ijk_to_lps puts it."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from cmrpipe.io.nifti import nifti_affine, nifti_dtype, write_nifti

sitk = pytest.importorskip("SimpleITK")


def rotation_xyz(ax_rad: float, ay_rad: float, az_rad: float) -> np.ndarray:
    """Rotation matrix ``Rz @ Ry @ Rx``."""
    cx, sx, cy, sy, cz, sz = (np.cos(ax_rad), np.sin(ax_rad), np.cos(ay_rad), np.sin(ay_rad),
                              np.cos(az_rad), np.sin(az_rad))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


@pytest.fixture(params=[1.0, -1.0], ids=["right_handed", "left_handed"])
def oblique_affine_ijk_to_lps(request) -> np.ndarray:
    """Double-oblique short-axis-like geometry: rotation, anisotropic spacing, origin;
    the left-handed case steps slices the other way (negative determinant)."""
    spacing_mm = np.array([1.37, 1.52, 8.0 * request.param])
    affine = np.eye(4)
    affine[:3, :3] = rotation_xyz(0.4, -0.7, 1.1) @ np.diag(spacing_mm)
    affine[:3, 3] = [-131.25, 87.5, 42.75]
    return affine


@pytest.fixture
def label_volume(rng) -> np.ndarray:
    return rng.integers(0, 4, size=(9, 7, 5)).astype(np.uint8)


VOXELS_IJK = [(0, 0, 0), (8, 0, 0), (0, 6, 0), (0, 0, 4), (3, 5, 2), (8, 6, 4)]


def test_nifti_affine_flips_x_and_y(oblique_affine_ijk_to_lps):
    ras = nifti_affine(oblique_affine_ijk_to_lps)
    assert np.allclose(ras[:2], -oblique_affine_ijk_to_lps[:2])
    assert np.allclose(ras[2:], oblique_affine_ijk_to_lps[2:])


def test_write_nifti_sitk_physical_points_match_lps(tmp_path, label_volume,
                                                    oblique_affine_ijk_to_lps):
    path = write_nifti(tmp_path / "labels.nii.gz", label_volume, oblique_affine_ijk_to_lps)
    image = sitk.ReadImage(str(path))
    assert image.GetSize() == label_volume.shape  # ITK index order = NIfTI i, j, k
    for ijk in VOXELS_IJK:
        expected_lps = (oblique_affine_ijk_to_lps @ np.r_[ijk, 1.0])[:3]
        got_lps = np.array(image.TransformIndexToPhysicalPoint(ijk))
        assert np.allclose(got_lps, expected_lps, atol=1e-4), ijk


def test_write_nifti_sitk_reads_same_voxels(tmp_path, label_volume, oblique_affine_ijk_to_lps):
    path = write_nifti(tmp_path / "labels.nii.gz", label_volume, oblique_affine_ijk_to_lps)
    array_kji = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))  # ITK arrays are (k, j, i)
    assert np.array_equal(array_kji.transpose(2, 1, 0), label_volume)


def test_write_nifti_nibabel_roundtrip_keeps_data_dtype_and_codes(tmp_path, label_volume,
                                                                  oblique_affine_ijk_to_lps):
    path = write_nifti(tmp_path / "labels.nii.gz", label_volume, oblique_affine_ijk_to_lps)
    img = nib.load(path)
    assert img.get_data_dtype() == np.uint8
    data = np.asanyarray(img.dataobj)
    assert data.dtype == np.uint8
    assert np.array_equal(data, label_volume)
    ras = nifti_affine(oblique_affine_ijk_to_lps)
    sform, sform_code = img.get_sform(coded=True)
    qform, qform_code = img.get_qform(coded=True)
    assert (int(sform_code), int(qform_code)) == (1, 1)
    assert np.allclose(sform, ras, atol=1e-4)
    assert np.allclose(qform, ras, atol=1e-4)
    assert img.header.get_xyzt_units() == ("mm", "msec")
    assert np.allclose(img.header.get_zooms(), [1.37, 1.52, 8.0], atol=1e-5)


@pytest.mark.parametrize("dtype, written", [(np.int16, np.int16), (np.uint8, np.uint8),
                                            (np.float64, np.float32), (np.float32, np.float32),
                                            (bool, np.uint8), (np.int64, np.int32)])
def test_write_nifti_dtypes(tmp_path, dtype, written):
    data = (np.arange(24).reshape(2, 3, 4) % 2).astype(dtype)
    path = write_nifti(tmp_path / "x.nii.gz", data, np.eye(4))
    back = np.asanyarray(nib.load(path).dataobj)
    assert back.dtype == written
    assert np.array_equal(back, data.astype(written))
    assert nifti_dtype(dtype) == written


def test_write_nifti_4d_keeps_shape_and_frame_interval(tmp_path, rng, oblique_affine_ijk_to_lps):
    cine = rng.integers(-200, 1500, size=(6, 5, 3, 25)).astype(np.int16)
    path = write_nifti(tmp_path / "cine.nii.gz", cine, oblique_affine_ijk_to_lps,
                       frame_interval_ms=38.5)
    img = nib.load(path)
    assert img.shape == (6, 5, 3, 25)
    assert float(img.header["pixdim"][4]) == pytest.approx(38.5)
    assert img.header.get_xyzt_units() == ("mm", "msec")
    assert np.array_equal(np.asanyarray(img.dataobj), cine)
    assert img.get_data_dtype() == np.int16


def test_write_nifti_makes_parent_folders(tmp_path, label_volume):
    path = write_nifti(tmp_path / "a" / "b" / "seg.nii.gz", label_volume, np.eye(4))
    assert path.is_file()


def test_write_nifti_does_not_change_caller_array(tmp_path):
    data = np.linspace(0.0, 1.0, 24).reshape(2, 3, 4)
    before = data.copy()
    write_nifti(tmp_path / "x.nii.gz", data, np.eye(4))
    assert data.dtype == np.float64 and np.array_equal(data, before)


@pytest.mark.parametrize("shape", [(4, 4), (2, 2, 2, 2, 2), (5,)])
def test_write_nifti_rejects_other_dims(tmp_path, shape):
    with pytest.raises(ValueError, match="dims"):
        write_nifti(tmp_path / "x.nii.gz", np.zeros(shape, np.uint8), np.eye(4))


@pytest.mark.parametrize("affine", [np.eye(3), np.zeros((4, 4)), np.diag([1.0, 1.0, 0.0, 1.0]),
                                    np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0],
                                              [0, 0, 0, 1]], float)])
def test_write_nifti_rejects_bad_affine(tmp_path, affine):
    with pytest.raises(ValueError, match="affine"):
        write_nifti(tmp_path / "x.nii.gz", np.zeros((2, 2, 2), np.uint8), affine)


def test_write_nifti_rejects_frame_interval_for_3d_and_bad_suffix(tmp_path):
    data = np.zeros((2, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="frame_interval_ms"):
        write_nifti(tmp_path / "x.nii.gz", data, np.eye(4), frame_interval_ms=40.0)
    with pytest.raises(ValueError, match=".nii.gz"):
        write_nifti(tmp_path / "x.nii", data, np.eye(4))
