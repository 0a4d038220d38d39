"""Writing synthetic cine CMR as real DICOM files (MR Image Storage) with pydicom.

Every file carries the geometry a reader needs (ImagePositionPatient,
ImageOrientationPatient, PixelSpacing, SliceThickness, SpacingBetweenSlices), the
cine position (TriggerTime, CardiacNumberOfImages, InstanceNumber), a
SeriesDescription naming the view, and synthetic identifiers (PatientName,
PatientID, dates) that must never reach any output. UIDs are derived from the
cohort seed and the subject key, so the same seed writes the same files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid
from pydicom.valuerep import format_number_as_ds

from cmrpipe.geometry import ImagePlane
from cmrpipe.synth.protocols import Protocol

SIGNAL_SCALE = 1000.0  # relative signal 1.0 -> pixel value 1000 (12-bit range)


@dataclass(frozen=True)
class SeriesInfo:
    """Identity of one series: its description, number and UID seeds."""

    description: str
    number: int


def uid(*parts) -> str:
    """A DICOM UID derived from ``parts`` (the same parts give the same UID).

    Examples
    --------
    >>> uid("cohort", 7, "s0001") == uid("cohort", 7, "s0001")
    True
    >>> uid("k", 1, 12) == uid("k", 11, 2)
    False
    """
    # pydicom concatenates entropy sources, so join them with a separator: ("1", "12") != ("11", "2")
    return generate_uid(prefix="2.25.", entropy_srcs=["\x1f".join(str(p) for p in parts)])


def to_pixels(image: np.ndarray) -> np.ndarray:
    """Relative signal to unsigned 12-bit pixel values."""
    return np.clip(np.rint(np.asarray(image, float) * SIGNAL_SCALE), 0, 4095).astype(np.uint16)


def image_dataset(pixels: np.ndarray, plane: ImagePlane, *, subject: dict, series: SeriesInfo,
                  protocol: Protocol, n_frames: int, instance: int, trigger_ms: float,
                  spacing_between_slices_mm: float | None, seed: int) -> FileDataset:
    """One cine frame of one plane as a DICOM dataset.

    Parameters
    ----------
    pixels : (rows, cols) uint16 array
    plane : ImagePlane
        Nominal geometry (as the scanner planned it).
    subject : dict
        ``key`` (the subject key), ``patient_name``, ``patient_id``, ``study_date``,
        ``birth_date``, ``sex`` and ``age_years``; identifiers are synthetic.
    series : SeriesInfo
    protocol : Protocol
        The acquisition: manufacturer, sequence, echo and repetition times.
    n_frames : int
        Frames per cycle.
    instance : int
        InstanceNumber (one-based, unique in the series).
    trigger_ms : float
        TriggerTime, ms after the R wave.
    spacing_between_slices_mm : float or None
        SpacingBetweenSlices for stacks.
    seed : int
        Cohort seed; UIDs derive from it.
    """
    key = subject["key"]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = uid(seed, key, series.number, instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = uid("cmrpipe", "synth")
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = uid(seed, key, "study")
    ds.SeriesInstanceUID = uid(seed, key, "series", series.number)
    ds.FrameOfReferenceUID = uid(seed, key, "frame-of-reference")
    ds.Modality = "MR"
    ds.Manufacturer = protocol.scanner
    ds.ManufacturerModelName = "cmrpipe synthetic"
    ds.PatientName = subject["patient_name"]
    ds.PatientID = subject["patient_id"]
    ds.PatientBirthDate = subject["birth_date"]
    ds.PatientSex = subject["sex"]
    ds.PatientAge = f"{int(subject['age_years']):03d}Y"
    ds.PatientPosition = "HFS"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = subject["study_date"]
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "090000"
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.PositionReferenceIndicator = ""
    ds.StudyID = "1"
    # MR Image module: a 2D cine gradient-echo acquisition at 1.5 T
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SP" if protocol.name == "mesa" else "SK"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = protocol.sequence
    ds.EchoTime = f"{protocol.echo_ms:.2f}"
    ds.RepetitionTime = f"{protocol.repetition_ms:.2f}"
    ds.EchoTrainLength = 1
    ds.MagneticFieldStrength = "1.5"
    ds.SeriesNumber = series.number
    ds.SeriesDescription = series.description
    ds.InstanceNumber = instance
    # geometry at the full precision a 16-character DS holds (patient coordinates round-trip to 1e-6 mm)
    ds.ImagePositionPatient = [format_number_as_ds(float(x)) for x in plane.position_lps]
    ds.ImageOrientationPatient = [format_number_as_ds(float(x)) for x in plane.orientation]
    ds.PixelSpacing = [format_number_as_ds(float(x)) for x in plane.pixel_spacing_mm]
    ds.SliceThickness = f"{plane.thickness_mm:.3f}"
    if spacing_between_slices_mm is not None:
        ds.SpacingBetweenSlices = f"{spacing_between_slices_mm:.3f}"
    ds.SliceLocation = f"{float(np.dot(plane.normal, plane.position_lps)):.6f}"
    ds.TriggerTime = f"{trigger_ms:.1f}"
    ds.CardiacNumberOfImages = n_frames
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    return ds


def to_bytes(ds: FileDataset) -> bytes:
    """The dataset as a DICOM Part 10 file."""
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def add_overlay(ds: FileDataset, mask: np.ndarray, description: str, group: int = 0x6000) -> None:
    """Attach a 1-bit graphics overlay (repeating group ``group``) drawn from a boolean mask.

    OverlayData is bit-packed, least significant bit first, row by row, as the
    standard requires (PS3.5 8.1.2); OverlayOrigin is (1, 1), the image's first pixel.
    """
    from pydicom.pixels import pack_bits

    mask = np.asarray(mask, bool)
    ds.add_new((group, 0x0010), "US", mask.shape[0])
    ds.add_new((group, 0x0011), "US", mask.shape[1])
    ds.add_new((group, 0x0022), "LO", description)
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", [1, 1])
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    packed = pack_bits(mask.astype(np.uint8).ravel())
    if len(packed) % 2:
        packed += b"\0"
    ds.add_new((group, 0x3000), "OW", packed)
