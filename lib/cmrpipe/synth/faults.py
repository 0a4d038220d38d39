"""Faulty subjects: the defects real cohorts have, planted on request, with the exclusion expected.

Each fault is given to one subject (the last ones of its protocol) and written to
the truth (``fault``, ``fault_file``, ``expected_stage``, ``expected_reason``), so the
data-preparation chapter can check that every planted fault ends in an exclusion
with the right reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pydicom


@dataclass(frozen=True)
class Fault:
    """A planted defect: its name, the protocol it is planted in, and the exclusion expected of data preparation."""

    name: str
    protocol: str
    expected_stage: str
    expected_reason: str


FAULTS = (
    Fault("truncated_file", "mesa", "ingest", "unreadable DICOM file (truncated)"),
    Fault("missing_geometry", "mesa", "ingest", "ImagePositionPatient missing"),
    Fault("missing_frame", "mesa", "ingest", "cine frames missing from a short-axis slice"),
    Fault("duplicate_slice", "mesa", "geometry", "duplicate short-axis slice positions"),
    Fault("broken_overlay", "ukb", "ingest", "InlineVF overlay data shorter than rows x columns"),
    Fault("missing_labels", "ukb", "labels", "contour and landmark files missing"),
    Fault("corrupt_zip", "ukb", "ingest", "corrupt zip file"),
)


def assign(protocols: tuple[str, ...], n_subjects: int, enabled: bool) -> dict[tuple[str, int], Fault]:
    """Which subject (protocol, index) gets which fault: the last subjects, one fault each.

    A protocol keeps at least two clean subjects; faults that do not fit are not planted.

    Examples
    --------
    >>> sorted((p, i, f.name) for (p, i), f in assign(("mesa",), 4, True).items())
    [('mesa', 2, 'missing_geometry'), ('mesa', 3, 'truncated_file')]
    """
    out = {}
    if not enabled:
        return out
    for protocol in protocols:
        faults = [f for f in FAULTS if f.protocol == protocol][: max(0, n_subjects - 2)]
        for k, fault in enumerate(faults):
            out[(protocol, n_subjects - 1 - k)] = fault
    return out


def plant_in_files(fault: Fault, out_dir: Path, files: list[Path]) -> Path | None:
    """Damage the written files for a file-level fault; return the damaged file (None if not file-level)."""
    sax = sorted(p for p in files if p.parent.name == "SAX")
    if fault.name == "truncated_file":
        target = sax[0]
        data = target.read_bytes()
        target.write_bytes(data[: int(len(data) * 0.6)])
        return target
    if fault.name in ("missing_geometry", "duplicate_slice", "missing_frame"):
        by_slice: dict[int, list[Path]] = {}
        for p in sax:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            n = int(ds.CardiacNumberOfImages)
            by_slice.setdefault((int(ds.InstanceNumber) - 1) // n, []).append(p)
        slices = sorted(by_slice)
        mid = slices[len(slices) // 2]
        if fault.name == "missing_frame":
            target = by_slice[mid][len(by_slice[mid]) // 2]
            target.unlink()
            files.remove(target)
            return target
        source_position = pydicom.dcmread(by_slice[mid - 1][0], stop_before_pixels=True).ImagePositionPatient
        for p in by_slice[mid]:
            ds = pydicom.dcmread(p)
            if fault.name == "missing_geometry":
                del ds.ImagePositionPatient
            else:
                ds.ImagePositionPatient = source_position
            ds.save_as(p, enforce_file_format=True)
        return by_slice[mid][0]
    if fault.name == "corrupt_zip":
        target = next(p for p in files if p.name.endswith("_20208_2_0.zip"))
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 3])
        return target
    if fault.name == "missing_labels":
        removed = [p for p in files if p.parent.name in ("contours", "landmarks")]
        for p in removed:
            p.unlink()
            files.remove(p)
        return removed[0] if removed else None
    return None
