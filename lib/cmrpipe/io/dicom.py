"""Reading DICOM images from a subject's sources: folders (any names, nested) and UK Biobank bulk zips.

Every file becomes one :class:`Image` (geometry, cine position, pixels, and an
InlineVF overlay where there is one) or a :class:`SubjectDataError` that names the
file. Identifiers (PatientName, PatientID, dates) are never read into an Image.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from cmrpipe.geometry import plane_affine
from cmrpipe.io.errors import SubjectDataError

# files that are never images: skipped without complaint (UK Biobank zips hold a "manifest.cvs")
NOT_IMAGES = {".txt", ".csv", ".cvs", ".json", ".xml", ".md", ".html", ".pdf", ".yaml", ".yml", ".log", ".jpg",
              ".jpeg", ".png", ".bmp", ".gif"}
REQUIRED_GEOMETRY = ("PixelSpacing", "ImagePositionPatient", "ImageOrientationPatient")
# the only elements parsed (identifiers are never read): keyword -> (tag, how its value is read)
ELEMENTS = {
    "SOPInstanceUID": (0x00080018, "str"), "SeriesInstanceUID": (0x0020000E, "str"),
    "SeriesDescription": (0x0008103E, "str"), "InstanceNumber": (0x00200013, "int"),
    "TriggerTime": (0x00181060, "float"), "CardiacNumberOfImages": (0x00181090, "int"),
    "PixelSpacing": (0x00280030, "floats"), "ImagePositionPatient": (0x00200032, "floats"),
    "ImageOrientationPatient": (0x00200037, "floats"), "SliceThickness": (0x00180050, "float"),
    "SpacingBetweenSlices": (0x00180088, "float"), "SamplesPerPixel": (0x00280002, "us"),
    "PhotometricInterpretation": (0x00280004, "str"), "Rows": (0x00280010, "us"), "Columns": (0x00280011, "us"),
    "BitsAllocated": (0x00280100, "us"), "BitsStored": (0x00280101, "us"), "HighBit": (0x00280102, "us"),
    "PixelRepresentation": (0x00280103, "us"), "NumberOfFrames": (0x00280008, "int"),
}
# what pydicom parses: those elements, the pixel data and the overlay group 0x6000
TAGS = [tag for tag, _ in ELEMENTS.values()] + [0x7FE00010, 0x60000010, 0x60000011, 0x60000022, 0x60000040,
                                                 0x60000050, 0x60000100, 0x60000102, 0x60003000]
_NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}  # implicit and explicit VR little endian


def is_candidate(name: str) -> bool:
    """Whether a file (or zip member) name may hold DICOM: not hidden, not a DICOMDIR, not a known non-image.

    Examples
    --------
    >>> [is_candidate(n) for n in ("IM_0001.dcm", "1.2.840.5", "manifest.cvs", ".DS_Store", "__MACOSX/._a.dcm")]
    [True, True, False, False, False]
    """
    parts = Path(name).parts
    return bool(parts) and not any(p.startswith(".") or p == "__MACOSX" for p in parts) and \
        parts[-1].upper() != "DICOMDIR" and Path(name).suffix.lower() not in NOT_IMAGES


@dataclass
class Image:
    """One DICOM image, without identifiers.

    Attributes
    ----------
    path : str
        Where it came from, relative to the cohort root (``zip/member`` inside a zip).
    sop_uid, series_uid, description : str
    instance : int
    trigger_ms : float
        TriggerTime (NaN when absent).
    n_cardiac : int
        CardiacNumberOfImages (0 when absent).
    position_lps : (3,) float array
        ImagePositionPatient, mm.
    orientation : (6,) float array
        ImageOrientationPatient.
    spacing_mm : (2,) float array
        PixelSpacing (between rows, between columns).
    thickness_mm : float
    spacing_between_slices_mm : float
        SpacingBetweenSlices (NaN when absent).
    pixels : (rows, cols) array
    overlay : (rows, cols) bool array or None
        The group 0x6000 overlay, decoded (LSB first), where present.
    """

    path: str
    sop_uid: str
    series_uid: str
    description: str
    instance: int
    trigger_ms: float
    n_cardiac: int
    position_lps: np.ndarray
    orientation: np.ndarray
    spacing_mm: np.ndarray
    thickness_mm: float
    spacing_between_slices_mm: float
    pixels: np.ndarray
    overlay: np.ndarray | None = None

    @property
    def normal(self) -> np.ndarray:
        """Unit plane normal, row direction x column direction."""
        return np.cross(self.orientation[:3], self.orientation[3:])

    @property
    def affine_ijk_to_lps(self) -> np.ndarray:
        """The (row, col, k) -> LPS affine of this image's plane."""
        return plane_affine(self.position_lps, self.orientation, self.spacing_mm)


def _float(ds, keyword: str, default: float = float("nan")) -> float:
    value = ds.get(keyword)
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _pixels(ds, h: dict) -> np.ndarray:
    """Pixel data: native little-endian single-frame greyscale read directly, anything else by pydicom."""
    syntax = str(ds.file_meta.get("TransferSyntaxUID", "")) if "file_meta" in ds.__dict__ else ""
    bits, rows, cols = h["BitsAllocated"] or 0, h["Rows"] or 0, h["Columns"] or 0
    if (syntax in _NATIVE and bits in (8, 16) and (h["SamplesPerPixel"] or 1) == 1
            and (h["NumberOfFrames"] or 1) == 1 and h["PhotometricInterpretation"] in ("MONOCHROME1", "MONOCHROME2")):
        signed, stored = bool(h["PixelRepresentation"]), h["BitsStored"] or bits
        if not (signed and stored < bits):
            data = ds.get_item(0x7FE00010).value
            if _short_pixel_data(ds, h):
                raise ValueError(f"{len(data)} bytes of pixel data for {rows} x {cols} x {bits // 8}")
            pixels = np.frombuffer(data, f"<{'i' if signed else 'u'}{bits // 8}", rows * cols).reshape(rows, cols)
            return pixels & ((1 << stored) - 1) if stored < bits else pixels  # bits above HighBit are not image
    return ds.pixel_array


def _set_transfer_syntax(ds) -> None:
    """A file without meta information: take its transfer syntax from how it was read."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if "file_meta" not in ds.__dict__ or "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                          ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _short_pixel_data(ds, h: dict) -> bool:
    """Whether uncompressed pixel data holds fewer bytes than the image needs (a truncated file)."""
    try:
        n_bytes = len(ds.get_item(0x7FE00010).value)
    except Exception:
        return True
    needed = (h["Rows"] or 0) * (h["Columns"] or 0) * ((h["BitsAllocated"] or 0) // 8) * (h["SamplesPerPixel"] or 1)
    return n_bytes < needed * (h["NumberOfFrames"] or 1)


def decode_overlay(ds, key: str, path: str, group: int = 0x6000) -> np.ndarray | None:
    """A dataset's 1-bit overlay as a boolean (rows, cols) mask, or None when it has none.

    Raises
    ------
    SubjectDataError
        When OverlayData holds fewer bits than OverlayRows x OverlayColumns.
    """
    if (group, 0x3000) not in ds:
        return None
    missing = [name for name, element in (("OverlayRows", 0x0010), ("OverlayColumns", 0x0011),
                                          ("OverlayBitsAllocated", 0x0100)) if (group, element) not in ds]
    if missing:
        raise SubjectDataError(key, path, "ingest", f"overlay without {', '.join(missing)}")
    rows, cols = int(ds[group, 0x0010].value), int(ds[group, 0x0011].value)
    n_bits = len(ds[group, 0x3000].value) * 8
    if n_bits < rows * cols:
        raise SubjectDataError(key, path, "ingest", f"InlineVF overlay data shorter than rows x columns "
                                                    f"({n_bits} bits for {rows} x {cols})")
    overlay = ds.overlay_array(group).astype(bool)
    # place it on the image: OverlayOrigin is the (row, col) of its first pixel, 1-based
    origin = [int(v) - 1 for v in ds[group, 0x0050].value] if (group, 0x0050) in ds else [0, 0]
    shape = (int(ds.Rows), int(ds.Columns))
    r0, c0 = origin
    if r0 < 0 or c0 < 0 or r0 + rows > shape[0] or c0 + cols > shape[1]:
        raise SubjectDataError(key, path, "ingest", f"overlay of {rows} x {cols} at origin {r0 + 1}, {c0 + 1} "
                                                    f"does not fit the {shape[0]} x {shape[1]} image")
    placed = np.zeros(shape, bool)
    placed[r0:r0 + rows, c0:c0 + cols] = overlay
    return placed


def _header(ds) -> dict:
    """The :data:`ELEMENTS` as Python values, keyed by keyword (absent or empty: None).

    For the little-endian transfer syntaxes the raw bytes are parsed directly (pydicom's
    value conversion costs more than reading the file); otherwise pydicom converts them.
    """
    raw_path = str(ds.file_meta.get("TransferSyntaxUID", "")) in _NATIVE if "file_meta" in ds.__dict__ else False
    out = {}
    for keyword, (tag, kind) in ELEMENTS.items():
        if tag not in ds:
            out[keyword] = None
            continue
        element = ds.get_item(tag)
        value = element.value
        if not raw_path or not isinstance(value, bytes):
            value = ds[tag].value
            if value in (None, "") or (isinstance(value, (list, tuple, pydicom.multival.MultiValue)) and not value):
                out[keyword] = None
            elif kind == "floats":
                out[keyword] = [float(v) for v in (value if isinstance(value, (list, tuple, pydicom.multival.MultiValue))
                                                   else [value])]
            else:
                out[keyword] = {"str": str, "int": int, "float": float, "us": int}[kind](value)
            continue
        if kind == "us":
            out[keyword] = int.from_bytes(value[:2], "little") if len(value) >= 2 else None
            continue
        text = value.decode("ascii", "replace").strip("\0 ")
        if not text:
            out[keyword] = None
        elif kind == "floats":
            out[keyword] = [float(v) for v in text.split("\\")]
        else:
            out[keyword] = {"str": str, "int": lambda t: int(float(t)), "float": float}[kind](text)
    return out


def read_image(source, key: str, path: str) -> Image | None:
    """Read one DICOM file (a path or bytes); None for a DICOM file that holds no image.

    Raises
    ------
    SubjectDataError
        Not DICOM, unreadable (e.g. truncated), or missing geometry; names the file.
    """
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        try:
            ds = pydicom.dcmread(io.BytesIO(data), specific_tags=TAGS)
        except InvalidDicomError:
            if data[:2] not in (b"\x08\x00", b"\x02\x00"):  # no preamble and no group 0002/0008 start
                raise
            ds = pydicom.dcmread(io.BytesIO(data), specific_tags=TAGS, force=True)  # old ACR-NEMA style
            if "SOPClassUID" not in pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=True):
                raise InvalidDicomError("no DICOM preamble and no SOP Class") from None
            _set_transfer_syntax(ds)
        if "PixelData" not in ds:
            return None  # DICOMDIR, structured reports, presentation states
        h = _header(ds)
        overlay = decode_overlay(ds, key, path)
    except SubjectDataError:
        raise
    except InvalidDicomError:
        raise SubjectDataError(key, path, "ingest", "not a DICOM file") from None
    except Exception as err:  # pydicom raises many kinds on damaged files
        raise SubjectDataError(key, path, "ingest", f"unreadable DICOM file ({type(err).__name__}: {err})") from None
    missing = [k for k in REQUIRED_GEOMETRY if not h[k]]
    if missing:
        raise SubjectDataError(key, path, "ingest", f"{', '.join(missing)} missing")
    if len(h["ImagePositionPatient"]) != 3 or len(h["ImageOrientationPatient"]) != 6 or len(h["PixelSpacing"]) != 2:
        raise SubjectDataError(key, path, "ingest", "ImagePositionPatient, ImageOrientationPatient or PixelSpacing "
                               "has the wrong number of values")
    try:
        pixels = _pixels(ds, h)
    except Exception as err:
        what = "(truncated)" if _short_pixel_data(ds, h) else "(pixel data in a form that cannot be decoded)"
        raise SubjectDataError(key, path, "ingest",
                               f"unreadable DICOM file {what}: pixel data could not be decoded ({err})") from None
    if pixels.ndim != 2:
        raise SubjectDataError(key, path, "ingest", f"multi-frame (enhanced) or colour DICOM is not supported "
                                                    f"(pixel array of shape {pixels.shape})")
    nan = float("nan")
    return Image(
        path=path, sop_uid=h["SOPInstanceUID"] or "", series_uid=h["SeriesInstanceUID"] or "",
        description=h["SeriesDescription"] or "", instance=h["InstanceNumber"] or 0,
        trigger_ms=nan if h["TriggerTime"] is None else h["TriggerTime"], n_cardiac=h["CardiacNumberOfImages"] or 0,
        position_lps=np.asarray(h["ImagePositionPatient"], float),
        orientation=np.asarray(h["ImageOrientationPatient"], float), spacing_mm=np.asarray(h["PixelSpacing"], float),
        thickness_mm=nan if h["SliceThickness"] is None else h["SliceThickness"],
        spacing_between_slices_mm=nan if h["SpacingBetweenSlices"] is None else h["SpacingBetweenSlices"],
        pixels=pixels, overlay=overlay)


def read_files(root: Path, paths: list[str], key: str) -> list[Image]:
    """Every image among the listed files (relative to ``root``); zips are opened, non-images skipped.

    Only the files the manifest lists (and checksums) are read: anything else lying in a
    subject's folder is never used.
    """
    images = []
    for rel in sorted(paths):
        if rel.lower().endswith(".zip"):
            images += read_zip(root, rel, key)
        elif is_candidate(rel):
            image = read_image(Path(root) / rel, key, rel)
            if image is not None:
                images.append(image)
    return images


def read_zip(root: Path, zip_path: str, key: str) -> list[Image]:
    """Every image in a (UK Biobank bulk) zip: members that may hold DICOM (see :func:`is_candidate`)."""
    try:
        with zipfile.ZipFile(Path(root) / zip_path) as z:
            members = [n for n in z.namelist() if not n.endswith("/") and is_candidate(n)]
            images = []
            for name in sorted(members):
                image = read_image(z.read(name), key, f"{zip_path}/{name}")
                if image is not None:
                    images.append(image)
            return images
    except SubjectDataError:
        raise
    except FileNotFoundError:
        raise SubjectDataError(key, zip_path, "ingest", "zip file missing") from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile, zlib.error, RuntimeError, NotImplementedError,
            ValueError) as err:
        raise SubjectDataError(key, zip_path, "ingest", f"corrupt zip file ({err})") from None
