"""Ingestion: manifests, DICOM and zips, views and geometry, overlays, labels, the store, and bad input."""

import io
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pydicom
import pytest
import yaml
from pydicom.data import get_testdata_file

from cmrpipe.geometry import points_ijk_to_lps
from cmrpipe.io import dicom, labels, views
from cmrpipe.io.errors import SubjectDataError
from cmrpipe.io.manifest import ManifestError, load_manifest, sha256_file, write_manifest
from cmrpipe.io.store import ingest_cohort
from cmrpipe.synth.cohort import config_for, generate_cohort
from tiny import TINY


@pytest.fixture(scope="module")
def clean_cohort(tmp_path_factory):
    """Two subjects per look, no planted faults, ingested once."""
    out = tmp_path_factory.mktemp("cohort")
    truth = generate_cohort(config_for("smoke", seed=3, n_subjects=2, faults=False, **TINY), out, progress=False)
    store = tmp_path_factory.mktemp("store")
    index, exclusions = ingest_cohort(out / "manifest.yaml", store, progress=False)
    return out, truth, store, index, exclusions


def _copy(clean_cohort, tmp_path) -> Path:
    out = tmp_path / "cohort"
    shutil.copytree(clean_cohort[0], out)
    return out


def _refresh_checksums(cohort: Path) -> None:
    """Re-hash (or unlist) every file, so that a planted defect is met as a defect, not as a checksum change."""
    table = pd.read_csv(cohort / "manifest.csv")
    table = table[[(cohort / p).exists() or p.startswith("labels/") for p in table.path]].copy()
    table["sha256"] = [sha256_file(cohort / p) if (cohort / p).exists() else "0" * 64 for p in table.path]
    table.to_csv(cohort / "manifest.csv", index=False)


def _ingest_one(cohort: Path, tmp_path: Path, key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    _refresh_checksums(cohort)
    index, exclusions = ingest_cohort(cohort / "manifest.yaml", tmp_path / "store", progress=False)
    assert set(index.key) == {"mesa_0001", "mesa_0002", "ukb_0001", "ukb_0002"}  # nothing dropped
    assert (index.status == "included").sum() == 3 and list(exclusions.key) == [key]
    return index, exclusions


def _mesa_sax(cohort: Path, key: str = "mesa_0001") -> list[Path]:
    return sorted((cohort / "mesa" / "dicom" / key / "SAX").glob("*.dcm"))


# ---- the clean cohort round-trips ----------------------------------------------------------

def test_clean_cohort_is_ingested_whole(clean_cohort):
    _, truth, store, index, exclusions = clean_cohort
    assert exclusions.empty and (index.status == "included").all()
    row = index.set_index("key").loc["mesa_0001"]
    t = truth.set_index("key").loc["mesa_0001"]
    assert row.n_sax_slices == t.n_sax_slices and row.n_frames == 4
    assert row.pitch_mm == pytest.approx(10.0) and row.thickness_mm == 6.0  # MESA: 6 mm slices, 4 mm gap
    assert (row.pixel_row_mm, row.pixel_col_mm) == pytest.approx((t.pixel_row_mm, t.pixel_col_mm))
    assert row.ed_frame == 0 and row.es_frame == t.es_frame and row.phase_source == "contours"
    assert index.set_index("key").loc["ukb_0001", "pitch_mm"] == pytest.approx(10.0)  # UKB: 8 + 2 mm
    assert (index.has_inlinevf == (index.protocol == "ukb")).all()


def test_store_images_equal_the_dicom_pixels_ordered_along_the_normal(clean_cohort):
    cohort, truth, store, _, _ = clean_cohort
    files = _mesa_sax(cohort)
    datasets = [pydicom.dcmread(f) for f in files]
    iop = np.array(datasets[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    with h5py.File(store / "mesa_0001.h5") as h5:
        images, positions = h5["sax/images"][:], h5["sax/position_lps"][:]
        assert np.all(np.diff(positions @ normal) < 0)  # base first: the synthetic normal points apex to base
        affine = h5["sax"].attrs["affine_ijk_to_lps"]
        assert np.allclose(points_ijk_to_lps(np.c_[np.zeros((len(positions), 2)), np.arange(len(positions))], affine),
                           positions, atol=1e-6)
        for ds in datasets[::7]:
            k = int(np.argmin(np.abs(positions @ normal - normal @ np.array(ds.ImagePositionPatient, float))))
            f = (int(ds.InstanceNumber) - 1) % 4
            assert np.array_equal(images[k, f], ds.pixel_array)


def test_patient_coordinates_round_trip_through_the_store(clean_cohort):
    cohort, _, store, _, _ = clean_cohort
    with h5py.File(cohort / "truth" / "mesa_0001.h5") as t, h5py.File(store / "mesa_0001.h5") as s:
        rc = t["landmarks/mitral_4ch_rc"][:].reshape(-1, 2)
        lps = t["landmarks/mitral_4ch_lps"][:].reshape(-1, 3) + t["lax_4ch"].attrs["shift_lps"]
        affine = s["lax_4ch"].attrs["affine_ijk_to_lps"]
        back = points_ijk_to_lps(np.c_[rc, np.zeros(len(rc))], affine)
        assert np.abs(back - lps).max() < 1e-6


def test_contour_masks_agree_with_the_truth(clean_cohort):
    cohort, truth, store, _, _ = clean_cohort
    with h5py.File(cohort / "truth" / "ukb_0001.h5") as t, h5py.File(store / "ukb_0001.h5") as s:
        drawn = s["contours/labels"][0]
        n = drawn.shape[0]
        dice = []
        for k in range(n):
            true = np.isin(t[f"sax_{k + 1:02d}/labels"][0], (1, 7))  # stored base first, as sax_01 is
            mine = drawn[k] == labels.CAVITY
            if true.sum() > 200:
                dice.append(2 * (true & mine).sum() / (true.sum() + mine.sum()))
    assert len(dice) >= 4 and min(dice) > 0.85


def test_inlinevf_labels_over_segment_the_myocardium(clean_cohort):
    _, _, store, _, _ = clean_cohort
    with h5py.File(store / "ukb_0001.h5") as s:
        ivf, manual = s["inlinevf/labels"][0], s["contours/labels"][0]
        present = s["inlinevf/present"][0]
    both = present & (manual == labels.MYOCARDIUM).any(axis=(1, 2))
    assert both.sum() >= 3
    assert (ivf[both] == labels.MYOCARDIUM).sum() > 1.2 * (manual[both] == labels.MYOCARDIUM).sum()


def test_landmarks_are_stored_with_patient_coordinates(clean_cohort):
    cohort, _, store, _, _ = clean_cohort
    placed = pd.read_csv(cohort / "labels" / "landmarks" / "mesa_0002.csv")
    with h5py.File(store / "mesa_0002.h5") as s:
        assert len(s["landmarks/row"]) == len(placed)
        assert set(s["landmarks/view"][:].astype(str)) == {"SAX", "2CH", "4CH"}
        assert np.isfinite(s["landmarks/x_lps"][:]).all()


def test_unchanged_subjects_are_not_read_again(clean_cohort, tmp_path):
    cohort, _, store, index, _ = clean_cohort
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    stamp = {p.name: p.stat().st_mtime_ns for p in copy.glob("*.h5")}
    again, _ = ingest_cohort(cohort / "manifest.yaml", copy, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in copy.glob("*.h5")} == stamp
    pd.testing.assert_frame_equal(again, index)


def test_identifiers_never_reach_the_store(clean_cohort):
    cohort, _, store, _, _ = clean_cohort
    ds = pydicom.dcmread(_mesa_sax(cohort)[0])
    identifiers = [str(ds.PatientName).encode(), str(ds.PatientID).encode(), str(ds.PatientBirthDate).encode(),
                   str(ds.StudyDate).encode()]
    for path in store.iterdir():
        data = path.read_bytes()
        for identifier in identifiers:
            assert identifier not in data, (path.name, identifier)
    with h5py.File(store / "mesa_0001.h5") as s:
        names = []
        s.visit(names.append)
        assert not [n for n in names if "patient" in n.lower() or "date" in n.lower()]


# ---- the planted faults of a synthetic cohort -----------------------------------------------

def test_every_planted_fault_is_excluded_with_its_reason(tmp_path, faulty_cohort):
    out, truth = faulty_cohort
    index, exclusions = ingest_cohort(out / "manifest.yaml", tmp_path / "store", workers=2, progress=False)
    planted = truth[truth.fault.fillna("") != ""].set_index("key")
    assert len(planted) == 7
    found = exclusions.set_index("key")
    assert set(found.index) == set(planted.index)
    for key, fault in planted.iterrows():
        assert found.loc[key, "stage"] == fault.expected_stage, key
        assert found.loc[key, "reason"].startswith(fault.expected_reason), (key, found.loc[key, "reason"])
        assert key in found.loc[key, "file"] or found.loc[key, "file"].startswith(("ukb/", "labels/")), key
    assert (index.set_index("key").loc[list(planted.index), "status"] == "excluded").all()


# ---- bad input, one defect at a time ---------------------------------------------------------

def _rewrite(path: Path, change) -> None:
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("defect, stage, reason", [
    ("truncated", "ingest", "unreadable DICOM file (truncated"),
    ("not_dicom", "ingest", "not a DICOM file"),
    ("no_spacing", "ingest", "PixelSpacing missing"),
    ("no_position", "ingest", "ImagePositionPatient missing"),
    ("no_orientation", "ingest", "ImageOrientationPatient missing"),
    ("mixed_orientation", "geometry", "mixed orientations in the short-axis series"),
    ("duplicate_position", "geometry", "duplicate short-axis slice positions"),
    ("missing_frame", "ingest", "cine frames missing from a short-axis slice"),
    ("matrix_size", "geometry", "inconsistent matrix sizes"),
    ("missing_slice", "qc", "slice gaps disagree"),
])
def test_bad_mesa_files_exclude_the_subject_with_a_clear_reason(clean_cohort, tmp_path, defect, stage, reason):
    cohort = _copy(clean_cohort, tmp_path)
    files = _mesa_sax(cohort, "mesa_0002")
    target = files[len(files) // 2]
    slice_of = lambda p: (int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) - 1) // 4
    if defect == "truncated":
        target.write_bytes(target.read_bytes()[:-3000])
    elif defect == "not_dicom":
        target.write_text("this is not an image")
    elif defect in ("no_spacing", "no_position", "no_orientation"):
        tag = {"no_spacing": "PixelSpacing", "no_position": "ImagePositionPatient",
               "no_orientation": "ImageOrientationPatient"}[defect]
        _rewrite(target, lambda ds: delattr(ds, tag))
    elif defect == "mixed_orientation":
        _rewrite(target, lambda ds: setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 1, 0]))
    elif defect == "duplicate_position":
        other, moved = pydicom.dcmread(files[0], stop_before_pixels=True).ImagePositionPatient, slice_of(target)
        for p in files:
            if slice_of(p) == moved:
                _rewrite(p, lambda ds: setattr(ds, "ImagePositionPatient", other))
    elif defect == "missing_frame":
        target.unlink()
    elif defect == "matrix_size":
        def crop(ds):
            ds.PixelData = ds.pixel_array[:-8].tobytes()
            ds.Rows = ds.Rows - 8
        _rewrite(target, crop)
    elif defect == "missing_slice":
        gone = slice_of(target)
        for p in files:
            if slice_of(p) == gone:
                p.unlink()
    _, exclusions = _ingest_one(cohort, tmp_path, "mesa_0002")
    row = exclusions.iloc[0]
    assert row.stage == stage and row.reason.startswith(reason), row.reason
    assert row.file.startswith("mesa/dicom/mesa_0002/")


def _rezip(path: Path, change) -> None:
    """Rewrite a UK Biobank zip, passing each (name, data) through ``change``."""
    with zipfile.ZipFile(path) as z:
        members = [(n, z.read(n)) for n in z.namelist()]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            z.writestr(name, change(name, data))


def test_short_overlay_and_corrupt_zip_exclude_ukb_subjects(clean_cohort, tmp_path):
    cohort = _copy(clean_cohort, tmp_path)

    def shorten(name, data):
        if not name.endswith(".dcm"):
            return data
        ds = pydicom.dcmread(io.BytesIO(data))
        if (0x6000, 0x3000) in ds:
            ds[0x6000, 0x3000].value = ds[0x6000, 0x3000].value[:100]
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()

    _rezip(cohort / "ukb" / "bulk" / "1000002_20209_2_0.zip", shorten)
    _, exclusions = _ingest_one(cohort, tmp_path, "ukb_0002")
    assert exclusions.iloc[0].reason.startswith("InlineVF overlay data shorter than rows x columns")
    assert exclusions.iloc[0].file.startswith("ukb/bulk/1000002_20209_2_0.zip/")

    cohort = tmp_path / "again"
    shutil.copytree(clean_cohort[0], cohort)
    lax = cohort / "ukb" / "bulk" / "1000002_20208_2_0.zip"
    lax.write_bytes(lax.read_bytes()[:5000])
    _, exclusions = _ingest_one(cohort, tmp_path / "second", "ukb_0002")
    assert exclusions.iloc[0].reason.startswith("corrupt zip file") and exclusions.iloc[0].stage == "ingest"


@pytest.mark.parametrize("defect, reason", [
    ("unknown_image", "contour file names 1 image(s) that do not exist"),
    ("nan", "NaN coordinates in the label file"),
    ("negative", "negative or out-of-image coordinates"),
    ("missing", "contour file missing"),
])
def test_bad_labels_exclude_the_subject(clean_cohort, tmp_path, defect, reason):
    cohort = _copy(clean_cohort, tmp_path)
    path = cohort / "labels" / "contours" / "mesa_0001.csv"
    table = pd.read_csv(path)
    if defect == "unknown_image":
        table.loc[table.sop_instance_uid == table.sop_instance_uid.iloc[0], "sop_instance_uid"] = "1.2.3.4.5"
    elif defect == "nan":
        table.loc[3, "row"] = np.nan
    elif defect == "negative":
        table.loc[3, "col"] = -12.0
    table.to_csv(path, index=False)
    if defect == "missing":
        path.unlink()
    _, exclusions = _ingest_one(cohort, tmp_path, "mesa_0001")
    row = exclusions.iloc[0]
    assert row.stage == "labels" and row.reason.startswith(reason) and row.file == "labels/contours/mesa_0001.csv"


def test_a_changed_file_is_refused_before_use_and_stored_subjects_are_kept(clean_cohort, tmp_path):
    cohort = _copy(clean_cohort, tmp_path)
    store = tmp_path / "store"
    ingest_cohort(cohort / "manifest.yaml", store, progress=False)
    kept = (store / "mesa_0001.h5").read_bytes()
    target = _mesa_sax(cohort, "mesa_0002")[0]
    _rewrite(target, lambda ds: setattr(ds, "SeriesDescription", "SAX cine (edited)"))
    index, exclusions = ingest_cohort(cohort / "manifest.yaml", store, progress=False)
    row = exclusions.set_index("key").loc["mesa_0002"]
    assert row.stage == "checksum" and "checksum disagrees" in row.reason
    assert row.file == str(target.relative_to(cohort))
    assert (store / "mesa_0001.h5").read_bytes() == kept and not (store / "mesa_0002.h5").exists()
    assert index.set_index("key").loc["mesa_0001", "status"] == "included"


# ---- readers against pydicom's own test files and closed forms --------------------------------

def test_pydicom_truncated_file_is_named_unreadable():
    with pytest.raises(SubjectDataError, match=r"\[k\] MR_truncated.dcm: unreadable DICOM file"):
        dicom.read_image(get_testdata_file("MR_truncated.dcm"), "k", "MR_truncated.dcm")


def test_overlay_decoding_is_bit_exact_and_lsb_first(tmp_path, rng):
    from cmrpipe.synth.dicom import add_overlay

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    mask = rng.random((ds.Rows, ds.Columns)) < 0.3
    add_overlay(ds, mask, "test")
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    image = dicom.read_image(buffer.getvalue(), "k", "x.dcm")
    assert np.array_equal(image.overlay, mask)
    raw = np.frombuffer(pydicom.dcmread(io.BytesIO(buffer.getvalue()))[0x6000, 0x3000].value, np.uint8)
    independent = np.unpackbits(raw, bitorder="little")[: mask.size].reshape(mask.shape).astype(bool)
    assert np.array_equal(independent, mask)
    path = get_testdata_file("examples_overlay.dcm")
    example = pydicom.dcmread(path)
    assert np.array_equal(dicom.read_image(path, "k", "examples_overlay.dcm").overlay, example.overlay_array(0x6000))


def test_overlay_origin_places_a_smaller_overlay(rng):
    from cmrpipe.synth.dicom import add_overlay

    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    mask = rng.random((20, 30)) < 0.4
    add_overlay(ds, mask, "test")
    ds[0x6000, 0x0050].value = [11, 21]  # 1-based (row, col) of the overlay's first pixel
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    overlay = dicom.read_image(buffer.getvalue(), "k", "x.dcm").overlay
    assert overlay.shape == (ds.Rows, ds.Columns)
    assert np.array_equal(overlay[10:30, 20:50], mask) and overlay.sum() == mask.sum()
    ds[0x6000, 0x0050].value = [60, 60]
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(SubjectDataError, match="does not fit"):
        dicom.read_image(buffer.getvalue(), "k", "x.dcm")


def test_multiframe_and_non_images_are_named():
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    with pytest.raises(SubjectDataError, match=r"mf.dcm: multi-frame \(enhanced\)"):
        dicom.read_image(buffer.getvalue(), "k", "mf.dcm")
    assert [dicom.is_candidate(n) for n in ("a/IM_1", "a/.DS_Store", "manifest.cvs", "__MACOSX/x.dcm")] == \
        [True, False, False, False]


def test_stray_and_unlisted_files_do_not_exclude_a_subject(clean_cohort, tmp_path):
    cohort = _copy(clean_cohort, tmp_path)
    (cohort / "mesa" / "dicom" / "mesa_0001" / ".DS_Store").write_bytes(b"\0\1junk")
    (cohort / "mesa" / "dicom" / "mesa_0001" / "SAX" / "notes.txt").write_text("reader's notes")
    shutil.copy(_mesa_sax(cohort, "mesa_0001")[0], cohort / "mesa" / "dicom" / "mesa_0001" / "unlisted.dcm")
    _refresh_checksums(cohort)  # lists .DS_Store and notes.txt; unlisted.dcm stays out of the manifest
    table = pd.read_csv(cohort / "manifest.csv")
    table = table[~table.path.str.endswith("unlisted.dcm")]
    table = pd.concat([table, pd.DataFrame({"path": ["mesa/dicom/mesa_0001/.DS_Store", "mesa/dicom/mesa_0001/SAX/notes.txt"],
                                            "sha256": [sha256_file(cohort / "mesa/dicom/mesa_0001/.DS_Store"),
                                                       sha256_file(cohort / "mesa/dicom/mesa_0001/SAX/notes.txt")]})])
    table.to_csv(cohort / "manifest.csv", index=False)
    index, exclusions = ingest_cohort(cohort / "manifest.yaml", tmp_path / "store", progress=False)
    assert exclusions.empty and (index.status == "included").all()  # the unlisted duplicate image is never read


def test_a_series_that_is_not_an_lv_cine_is_left_out(clean_cohort):
    manifest = load_manifest(clean_cohort[0] / "manifest.yaml")
    images = dicom.read_files(clean_cohort[0], manifest.subject_files(manifest.subjects[0]), "mesa_0001")
    sax = [i for i in images if i.description == "SAX cine"]
    lax = [i for i in images if i.description != "SAX cine"]
    import copy

    localizer = [copy.copy(i) for i in (sax[0], lax[0], lax[-1])]  # three planes of other orientations
    for i in localizer:
        i.series_uid, i.description = "localizer-uid", ""
    tagging = [copy.copy(i) for i in sax[:8]]
    for i in tagging:
        i.series_uid, i.description = "tag-uid", "tagging SA grid"
    grouped = views.group_views(images + localizer + tagging, "mesa_0001")
    assert len(grouped["sax"]) == len(sax) and set(grouped) == {"sax", "lax_2ch", "lax_4ch"}


def test_a_second_ingest_in_one_process_sees_the_edited_manifest(clean_cohort, tmp_path):
    cohort = _copy(clean_cohort, tmp_path)
    store = tmp_path / "store"
    ingest_cohort(cohort / "manifest.yaml", store, progress=False)
    target = _mesa_sax(cohort, "mesa_0002")[0]
    _rewrite(target, lambda ds: setattr(ds, "SeriesDescription", "SAX cine"))  # same content, new bytes
    _refresh_checksums(cohort)
    index, exclusions = ingest_cohort(cohort / "manifest.yaml", store, progress=False)
    assert exclusions.empty and (index.status == "included").all()


def test_filled_overlay_matches_the_drawn_polygons():
    from skimage.draw import polygon2mask, polygon_perimeter

    shape = (120, 120)
    theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    lines = np.zeros(shape, bool)
    filled = {}
    for name, radius in (("epi", 30.0), ("endo", 20.0)):
        rc = np.c_[60 + radius * np.sin(theta), 58 + radius * np.cos(theta)]
        rr, cc = polygon_perimeter(np.round(rc[:, 0]), np.round(rc[:, 1]), shape)
        lines[rr, cc] = True
        filled[name] = polygon2mask(shape, rc)
    out = labels.fill_contour_lines(lines)
    cavity = out == labels.CAVITY
    assert abs(int(cavity.sum()) - int(filled["endo"].sum())) < 0.08 * filled["endo"].sum()
    assert abs(int((out > 0).sum()) - int(filled["epi"].sum())) < 0.08 * filled["epi"].sum()
    single = labels.fill_contour_lines(lines & ~ndimage_dilate(filled["endo"]))
    assert not (single == labels.CAVITY).any() and (single == labels.MYOCARDIUM).sum() > 0


def ndimage_dilate(mask):
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=2)


def test_views_are_classified_by_description_then_geometry(clean_cohort):
    assert views.classify_description("cine_segmented_lax_4ch") == "lax_4ch"
    assert views.classify_description("SA cine") == "sax"
    manifest = load_manifest(clean_cohort[0] / "manifest.yaml")
    images = dicom.read_files(clean_cohort[0], manifest.subject_files(manifest.subjects[0]), "mesa_0001")
    by_description = views.group_views(images, "mesa_0001")
    for image in images:  # an anonymiser blanked every description
        image.description = ""
    by_geometry = views.group_views(images, "mesa_0001")
    assert set(by_geometry) == {"sax", "lax_2ch", "lax_4ch"}
    for view in by_geometry:
        assert {i.path for i in by_geometry[view]} == {i.path for i in by_description[view]}, view


# ---- manifests ------------------------------------------------------------------------------

def _manifest(tmp_path, document) -> Path:
    (tmp_path / "manifest.csv").write_text("path,sha256\n")
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


GOOD = {"schema": "cmrpipe-cohort/1", "checksums": "manifest.csv",
        "subjects": [{"key": "s1", "protocol": "mesa", "images": {"kind": "dicom_folder", "path": "s1"}}]}


@pytest.mark.parametrize("change, message", [
    ({"schema": "other/2"}, "schema must be 'cmrpipe-cohort/1'"),
    ({"subjects": []}, "'subjects' must be a non-empty list"),
    ({"subjects": [{"key": "a b", "protocol": "mesa"}]}, r"subjects\[0\]: key must be"),
    ({"subjects": [GOOD["subjects"][0], GOOD["subjects"][0]]}, r"subjects\[1\] \(key s1\): duplicate key"),
    ({"subjects": [{"key": "s1", "protocol": "philips", "images": {}}]}, "protocol must be one of mesa, ukb"),
    ({"subjects": [{"key": "s1", "protocol": "mesa", "images": {"kind": "nifti"}}]}, "images.kind must be one of"),
    ({"subjects": [{"key": "s1", "protocol": "mesa", "images": {"kind": "dicom_folder", "path": "../x"}}]},
     "must stay inside the cohort folder"),
    ({"checksums": "nowhere.csv"}, "checksums file nowhere.csv cannot be read"),
])
def test_invalid_manifests_are_refused_with_the_entry_named(tmp_path, change, message):
    with pytest.raises(ManifestError, match=message):
        load_manifest(_manifest(tmp_path, {**GOOD, **change}))


def test_synthetic_manifest_validates(clean_cohort):
    manifest = load_manifest(clean_cohort[0] / "manifest.yaml")
    assert [s.key for s in manifest.subjects] == ["mesa_0001", "mesa_0002", "ukb_0001", "ukb_0002"]
    assert len(manifest.subject_files(manifest.subjects[0])) == len(_mesa_sax(clean_cohort[0])) + 8


def test_cmrpipe_manifest_writes_one_for_a_folder_of_dicom(clean_cohort, tmp_path):
    folder = tmp_path / "site"
    shutil.copytree(clean_cohort[0] / "mesa" / "dicom", folder)
    shutil.copytree(clean_cohort[0] / "ukb" / "bulk", folder / "bulk")
    path = write_manifest(folder)
    manifest = load_manifest(path)
    # each subject folder is one subject; zips group by eid, wherever they lie
    assert [s.protocol for s in manifest.subjects] == ["mesa", "mesa", "ukb", "ukb"]
    assert [s.key for s in manifest.subjects] == [f"subj_{n:04d}" for n in range(1, 5)]
    index, exclusions = ingest_cohort(path, tmp_path / "store", progress=False)
    assert (index.status == "included").all() and exclusions.empty
    assert "mesa_0001" not in path.read_text().split("subjects:")[0]


@pytest.mark.parametrize("template", ["mesa_template.yaml", "ukb_template.yaml"])
def test_templates_follow_the_schema(tmp_path, template):
    from cmrpipe.paths import REPO_ROOT

    shutil.copy(REPO_ROOT / "data_manifest" / template, tmp_path / "manifest.yaml")
    (tmp_path / "manifest.csv").write_text("path,sha256\n")
    manifest = load_manifest(tmp_path / "manifest.yaml")
    assert manifest.subjects[0].protocol == template.split("_")[0]


def test_cli_manifest(clean_cohort, tmp_path, capsys):
    from cmrpipe import cli

    shutil.copytree(clean_cohort[0] / "mesa" / "dicom", tmp_path / "site")
    assert cli.main(["manifest", str(tmp_path / "site")]) == 0
    assert "2 subjects in" in capsys.readouterr().out
    assert cli.main(["manifest", str(tmp_path / "nowhere")]) == 1
    assert "not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"])
def test_fast_header_and_pixels_agree_with_pydicom(name):
    path = get_testdata_file(name)
    ds = pydicom.dcmread(path)
    image = dicom.read_image(path, "k", name)
    assert np.array_equal(image.pixels, ds.pixel_array)
    assert image.position_lps.tolist() == [float(x) for x in ds.ImagePositionPatient]
    assert image.orientation.tolist() == [float(x) for x in ds.ImageOrientationPatient]
    assert image.spacing_mm.tolist() == [float(x) for x in ds.PixelSpacing]
    assert image.sop_uid == ds.SOPInstanceUID and image.series_uid == ds.SeriesInstanceUID
    assert image.thickness_mm == float(ds.SliceThickness) and image.instance == int(ds.InstanceNumber)


def test_missing_apical_coverage_is_a_qc_exclusion(clean_cohort, tmp_path):
    cohort = _copy(clean_cohort, tmp_path)
    path = cohort / "labels" / "contours" / "mesa_0001.csv"
    table = pd.read_csv(path)
    files = _mesa_sax(cohort)
    n_slices = len(files) // 4
    last_ed = pydicom.dcmread(files[(n_slices - 1) * 4], stop_before_pixels=True)  # the apical slice at ED
    mid = table[(table.phase == "ED") & (table.slice == n_slices // 2)]
    table = table[~((table.phase == "ED") & (table.slice == n_slices))]
    table = pd.concat([table, mid.assign(slice=n_slices, sop_instance_uid=last_ed.SOPInstanceUID)])
    table.to_csv(path, index=False)
    _, exclusions = _ingest_one(cohort, tmp_path, "mesa_0001")
    row = exclusions.iloc[0]
    assert row.stage == "qc" and row.reason.startswith("apical coverage missing"), row.reason


def test_load_subject_reads_back_what_was_stored(clean_cohort):
    from cmrpipe.io.store import load_subject

    cohort, truth, store, index, _ = clean_cohort
    subject = load_subject(store, "ukb_0001")
    row = index.set_index("key").loc["ukb_0001"]
    assert subject.sax_images.shape == (row.n_sax_slices, row.n_frames, row.rows, row.cols)
    assert subject.es_frame == row.es_frame and subject.pitch_mm == pytest.approx(10.0)
    assert subject.contours.shape == (2, row.n_sax_slices, row.rows, row.cols) and subject.contoured.any()
    assert subject.inlinevf is not None and set(subject.lax) == {"lax_2ch", "lax_4ch"}
    assert set(subject.landmarks.view) == {"SAX", "2CH", "4CH"}
    with pytest.raises(FileNotFoundError, match="not in the store"):
        load_subject(store, "ukb_9999")


def test_a_file_without_preamble_or_meta_is_read():
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    expected = ds.pixel_array.copy()
    del ds.file_meta
    ds.preamble = None
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)  # old ACR-NEMA style: the dataset alone
    assert buffer.getvalue()[:2] == b"\x08\x00"
    assert np.array_equal(dicom.read_image(buffer.getvalue(), "k", "old.dcm").pixels, expected)
