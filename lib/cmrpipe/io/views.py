"""From a subject's images to its views: SAX stack, 2CH, 4CH and InlineVF, with geometry checks.

- Views are classified from SeriesDescription; where it says nothing known, from the
  geometry: a series of parallel planes at several positions is a SAX stack, and of
  two long-axis planes the one whose normal points more head-to-foot is the 4CH
  (horizontal long axis) and the other the 2CH (vertical long axis).
- SAX slices are ordered by position along the slice normal (ImageOrientationPatient
  cross product), never by SliceLocation, base first: of the two ends of the stack,
  the base is the one towards the patient's right, posterior and superior (the LV
  apex points left, anterior and inferior in a supine patient). The pitch is the
  distance between neighbouring positions, never SliceThickness (MESA: 6 mm slices,
  4 mm gap).
- Frames are ordered by TriggerTime (InstanceNumber where it is missing).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

from cmrpipe.geometry import plane_affine
from cmrpipe.io.dicom import Image
from cmrpipe.io.errors import SubjectDataError

MIN_SAX_SLICES = 4
ORIENTATION_TOLERANCE = 1e-3   # of direction cosines
POSITION_DECIMALS = 2          # mm: positions closer than this are the same slice
GAP_TOLERANCE = 0.25           # fraction of the pitch by which a gap may differ from the others
TOWARDS_BASE_LPS = np.array([-1.0, 1.0, 1.0]) / np.sqrt(3.0)  # right, posterior, superior

_NOT_CINE = re.compile(r"(?<![a-z])(tag\w*|grid|flow|venc|pc|molli|shmolli|t1\w*|t2\w*|lge|psir|de|scout|loc\w*|"
                       r"survey|haste|map\w*|perf\w*|aorta|3\s*plane|tri\s*plane)(?![a-z])", re.I)
_PATTERNS = (  # checked in order: InlineVF copies are SAX images too
    ("inlinevf", re.compile(r"inline\s*vf|inlinevf", re.I)),
    ("lax_3ch", re.compile(r"(?<![0-9a-z])3\s*ch(?![a-z])|lvot|three.?chamber", re.I)),
    ("lax_2ch", re.compile(r"(?<![0-9a-z])2\s*ch(?![a-z])|(?<![a-z])vla(?![a-z])|two.?chamber", re.I)),
    ("lax_4ch", re.compile(r"(?<![0-9a-z])4\s*ch(?![a-z])|(?<![a-z])hla(?![a-z])|four.?chamber", re.I)),
    ("sax", re.compile(r"(?<![a-z])sax?(?![a-z])|short.?axis", re.I)),
)


def classify_description(description: str) -> str | None:
    """The view a SeriesDescription names: sax, lax_2ch, lax_3ch, lax_4ch, inlinevf, ignore, or None.

    ``ignore``: a series that is not a cine of the LV (tagging, flow, mapping, late
    enhancement, localizers); None: the description says nothing known.

    Examples
    --------
    >>> [classify_description(d) for d in ("cine_segmented_sax_b3", "cine_segmented_sax_inlinevf", "2CH cine",
    ...     "CINE_HLA", "B-TFE_SA", "localizer", "tagging SA", "SA Cine 32ch coil", "T2 chest", "anything")]
    ['sax', 'inlinevf', 'lax_2ch', 'lax_4ch', 'sax', 'ignore', 'ignore', 'sax', 'ignore', None]
    """
    if _NOT_CINE.search(description):
        return "ignore"
    for view, pattern in _PATTERNS:
        if pattern.search(description):
            return view
    return None


@dataclass
class SaxStack:
    """The SAX cine stack, slices ordered by position along the normal, base first.

    Attributes
    ----------
    images : (slices, frames, rows, cols) array
    position_lps : (slices, 3) float array
        ImagePositionPatient of each slice.
    orientation : (6,) float array
    spacing_mm : (2,) float array
        PixelSpacing (rows, cols).
    pitch_mm : float
        Distance between neighbouring slice positions.
    slice_direction_lps : (3,) float array
        Unit vector from one slice to the next (towards the apex): the plane normal or its opposite.
    thickness_mm : float
    trigger_ms : (slices, frames) float array
    sop_uids : list of list of str
        [slice][frame].
    """

    images: np.ndarray
    position_lps: np.ndarray
    orientation: np.ndarray
    spacing_mm: np.ndarray
    pitch_mm: float
    slice_direction_lps: np.ndarray
    thickness_mm: float
    trigger_ms: np.ndarray
    sop_uids: list

    @property
    def affine_ijk_to_lps(self) -> np.ndarray:
        """(row, col, slice) -> LPS mm; the third axis steps one pitch from slice to slice."""
        affine = plane_affine(self.position_lps[0], self.orientation, self.spacing_mm)
        affine[:3, 2] = self.slice_direction_lps * self.pitch_mm
        return affine


@dataclass
class Cine:
    """One long-axis cine: (frames, rows, cols) images of one plane."""

    images: np.ndarray
    position_lps: np.ndarray
    orientation: np.ndarray
    spacing_mm: np.ndarray
    thickness_mm: float
    trigger_ms: np.ndarray
    sop_uids: list

    @property
    def affine_ijk_to_lps(self) -> np.ndarray:
        """(row, col, 0) -> LPS mm."""
        return plane_affine(self.position_lps, self.orientation, self.spacing_mm)


def _frame_order(images: list[Image]) -> list[Image]:
    if all(np.isfinite(i.trigger_ms) for i in images):
        return sorted(images, key=lambda i: (i.trigger_ms, i.instance))
    return sorted(images, key=lambda i: i.instance)


def _is_stack(series: list[Image]) -> bool:
    """Parallel planes at several positions, each a cine: what a SAX stack looks like without a name."""
    o = series[0].orientation
    if any(np.abs(i.orientation - o).max() > ORIENTATION_TOLERANCE for i in series):
        return False
    heights = [round(float(series[0].normal @ i.position_lps), POSITION_DECIMALS) for i in series]
    return len(set(heights)) >= MIN_SAX_SLICES and len(heights) >= 2 * len(set(heights))


def group_views(images: list[Image], key: str) -> dict[str, list[Image]]:
    """Images grouped by view (sax, lax_2ch, lax_4ch, lax_3ch, inlinevf).

    Series are named by SeriesDescription; others that are stacks of parallel cine
    planes are SAX, and single-plane cines are long axis (of two, the one whose normal
    points more head-to-foot is the 4CH). Series that are not LV cines (tagging, flow,
    maps, localizers) are left out. When SAX series disagree in orientation, those of
    the orientation holding the most images are kept.
    """
    by_series: dict[str, list[Image]] = {}
    for image in images:
        by_series.setdefault(image.series_uid or image.description, []).append(image)
    views: dict[str, list[Image]] = {}
    unknown_lax, sax_series = [], []
    for series in by_series.values():
        view = classify_description(series[0].description)
        if view == "ignore":
            continue
        if view is None:
            if _is_stack(series):
                view = "sax"
            elif len({tuple(np.round(i.position_lps, POSITION_DECIMALS)) for i in series}) == 1 and len(series) > 1:
                unknown_lax.append(series)
                continue
            else:
                continue  # neither a stack nor a single-plane cine: not ours
        if view == "sax":
            sax_series.append(series)
        else:
            views.setdefault(view, []).extend(series)
    if sax_series:  # series of another orientation than most SAX images (a re-planned stack) are left out
        groups: dict[tuple, list[Image]] = {}
        for series in sax_series:
            groups.setdefault(tuple(np.round(series[0].orientation, 2)), []).extend(series)
        views["sax"] = max(groups.values(), key=len)
    if unknown_lax:  # of two long-axis cines, the more head-to-foot normal is the horizontal long axis (4CH)
        unknown_lax.sort(key=lambda s: abs(s[0].normal[2]))
        named = ("lax_2ch", "lax_4ch") if len(unknown_lax) >= 2 else ()
        for view, series in zip(named, unknown_lax[-2:]):
            views.setdefault(view, series)
    return views


def _check_same_plane_shape(images: list[Image], key: str, what: str) -> None:
    shapes = {i.pixels.shape for i in images}
    if len(shapes) > 1:
        odd = next(i for i in images if i.pixels.shape != images[0].pixels.shape)
        raise SubjectDataError(key, odd.path, "geometry", f"inconsistent matrix sizes in the {what} "
                               f"({', '.join(f'{r}x{c}' for r, c in sorted(shapes))})")
    spacings = {tuple(np.round(i.spacing_mm, 4)) for i in images}
    if len(spacings) > 1:
        raise SubjectDataError(key, images[0].path, "geometry", f"inconsistent PixelSpacing in the {what}")


def sax_stack(images: list[Image], key: str) -> SaxStack:
    """Build the SAX stack and check it.

    Raises
    ------
    SubjectDataError
        Mixed orientations, inconsistent matrix sizes, duplicate slice positions, cine
        frames missing from a slice, slice gaps that disagree, or too few slices.
    """
    if not images:
        raise SubjectDataError(key, "", "ingest", "missing views: no short-axis images")
    reference = images[0].orientation
    for image in images:
        if np.abs(image.orientation - reference).max() > ORIENTATION_TOLERANCE:
            raise SubjectDataError(key, image.path, "geometry", "mixed orientations in the short-axis series")
    _check_same_plane_shape(images, key, "short-axis stack")
    normal = images[0].normal
    slices: dict[float, list[Image]] = {}
    for image in images:
        slices.setdefault(round(float(normal @ image.position_lps), POSITION_DECIMALS), []).append(image)
    heights = sorted(slices, reverse=bool(normal @ TOWARDS_BASE_LPS > 0))  # base first
    direction = normal if heights[-1] > heights[0] else -normal
    frames = [_frame_order(slices[h]) for h in heights]
    # frames per slice: CardiacNumberOfImages where given, else the count most slices have
    n_frames = max(i.n_cardiac for i in images) or Counter(len(f) for f in frames).most_common(1)[0][0]
    for h, f in zip(heights, frames):
        triggers = [i.trigger_ms if np.isfinite(i.trigger_ms) else i.instance for i in f]
        if len(set(triggers)) < len(triggers) or len(f) > n_frames:
            raise SubjectDataError(key, f[0].path, "geometry", f"duplicate short-axis slice positions "
                                   f"({len(f)} images at {h:.2f} mm along the normal)")
    for h, f in zip(heights, frames):
        if len(f) < n_frames:
            raise SubjectDataError(key, f[0].path, "ingest", f"cine frames missing from a short-axis slice "
                                   f"({len(f)} of {n_frames} at {h:.2f} mm)")
    if len(heights) < MIN_SAX_SLICES:
        raise SubjectDataError(key, images[0].path, "qc", f"too few short-axis slices ({len(heights)}, "
                               f"at least {MIN_SAX_SLICES} needed)")
    gaps = np.abs(np.diff(heights))
    pitch = float(np.median(gaps))
    if np.abs(gaps - pitch).max() > GAP_TOLERANCE * pitch:
        raise SubjectDataError(key, frames[int(np.argmax(np.abs(gaps - pitch))) + 1][0].path, "qc",
                               f"slice gaps disagree ({', '.join(f'{g:.1f}' for g in gaps)} mm): a slice missing?")
    return SaxStack(images=np.stack([np.stack([i.pixels for i in f]) for f in frames]),
                    position_lps=np.stack([f[0].position_lps for f in frames]), orientation=reference,
                    spacing_mm=images[0].spacing_mm, pitch_mm=pitch, slice_direction_lps=direction,
                    thickness_mm=images[0].thickness_mm,
                    trigger_ms=np.array([[i.trigger_ms for i in f] for f in frames]),
                    sop_uids=[[i.sop_uid for i in f] for f in frames])


def lax_cine(images: list[Image], key: str, view: str) -> Cine:
    """One long-axis cine (a single plane), frames ordered.

    Raises
    ------
    SubjectDataError
        Several planes, or inconsistent matrix sizes.
    """
    _check_same_plane_shape(images, key, view)
    positions = {tuple(np.round(i.position_lps, POSITION_DECIMALS)) for i in images}
    if len(positions) > 1:
        raise SubjectDataError(key, images[0].path, "geometry", f"{view} series holds {len(positions)} planes")
    ordered = _frame_order(images)
    return Cine(images=np.stack([i.pixels for i in ordered]), position_lps=ordered[0].position_lps,
                orientation=ordered[0].orientation, spacing_mm=ordered[0].spacing_mm,
                thickness_mm=ordered[0].thickness_mm, trigger_ms=np.array([i.trigger_ms for i in ordered]),
                sop_uids=[i.sop_uid for i in ordered])
