"""InlineVF-like automated contours: what the scanner's inline analysis would draw.

Siemens InlineVF stores its endo- and epicardial contours as a 1-bit graphics
overlay (group 0x6000) on copies of the short-axis images at ED and ES. Paper B
found its LV mass systematically too high (InlineVF 155 g against 90 g manual) with
occasional gross failures. Here the contours follow the true surfaces with the
endocardium drawn inside and the epicardium outside (myocardial over-segmentation)
and fail grossly on some slices, most often basal and apical ones. Everything that
is planted is written to the truth.
"""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon_perimeter

ENDO_OFFSET_MM = (-1.2, 0.3)   # mean, SD of the inward displacement of the endocardium (negative = inside)
EPI_OFFSET_MM = (2.2, 0.4)     # mean, SD of the outward displacement of the epicardium
FAILURE_RATE = {"basal": 0.25, "apical": 0.20, "mid": 0.03}
FAILURES = ("none", "leak", "shrunk", "missing", "no_lv")  # codes 0-4 in the truth; no_lv: the slice cuts no LV
N_POINTS = 64


def draw(s: dict, contraction: np.ndarray, frame: int, slice_index: int, lv_slices: list[int], view,
         rng: np.random.Generator, offsets_mm: tuple[float, float], to_rc) -> tuple[np.ndarray | None, int]:
    """The overlay mask InlineVF would draw on one SAX image, and its failure code.

    Parameters
    ----------
    s : dict
        The subject.
    contraction : (n_frames,) float array
    frame, slice_index : int
        Zero-based frame and slice (0 = most basal).
    lv_slices : list of int
        The slices that cut the LV at this frame, base first: failures are likelier
        on the first (basal) and the last two (apical).
    view : View
    rng : numpy.random.Generator
    offsets_mm : (float, float)
        This subject's endocardial and epicardial displacement, mm.
    to_rc : callable
        LPS -> (row, col).

    Returns
    -------
    mask : (rows, cols) bool array or None
        Contour lines, one pixel wide; None when InlineVF drew nothing.
    failure : int
        Index into :data:`FAILURES`.
    """
    heart, pose = s["heart"], s["pose"]
    if slice_index not in lv_slices:
        return None, FAILURES.index("no_lv")
    where = ("basal" if slice_index == lv_slices[0] else "apical" if slice_index in lv_slices[-2:] else "mid")
    failure = 0
    if rng.random() < FAILURE_RATE[where]:
        failure = int(rng.integers(1, FAILURES.index("missing") + 1))
    if failure == FAILURES.index("missing"):
        return None, failure
    w = float(pose.to_hrt(np.asarray(view.plane.position_lps))[2])
    sc = float(contraction[frame])
    endo, epi = heart.contour_hrt(sc, w, "endo", N_POINTS), heart.contour_hrt(sc, w, "epi", N_POINTS)
    theta = np.arange(N_POINTS) * 2 * np.pi / N_POINTS
    radial = np.column_stack([np.cos(theta), np.sin(theta), np.zeros(N_POINTS)])
    if endo is not None and np.hypot(endo[:, 0], endo[:, 1]).min() + offsets_mm[0] > 1.0:
        endo = endo + radial * offsets_mm[0]
    else:  # the apical cap, or a cavity too small to draw inside: the epicardium alone
        endo = None
    epi = epi + radial * offsets_mm[1]
    if failure == 1:   # leak: the epicardium swallows neighbouring tissue on one side
        bulge = 12.0 * np.clip(np.cos(theta - rng.uniform(0, 2 * np.pi)), 0, None) ** 2
        epi = epi + radial * bulge[:, None]
    elif failure == 2:  # shrunk: both contours collapse towards the centre
        endo, epi = (None if endo is None else endo * [0.55, 0.55, 1.0]), epi * [0.6, 0.6, 1.0]
    mask = np.zeros((view.plane.rows, view.plane.cols), bool)
    for contour in (c for c in (endo, epi) if c is not None):
        rc = to_rc(pose.to_lps(contour) + view.shift_lps, view)
        rr, cc = polygon_perimeter(np.round(rc[:, 0]), np.round(rc[:, 1]), mask.shape, clip=True)
        mask[rr, cc] = True
    return mask, failure
