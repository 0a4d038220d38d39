"""Labels into masks and point sets: core-lab contours, observers' landmarks, InlineVF overlays.

The label codes of every mask in the store are defined here, once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from skimage.draw import polygon2mask

from cmrpipe.geometry import points_ijk_to_lps
from cmrpipe.io.errors import SubjectDataError
from cmrpipe.io.views import Cine, SaxStack

BACKGROUND, CAVITY, MYOCARDIUM = 0, 1, 2
"""Mask codes: LV cavity (blood pool, papillary muscles included) and LV myocardium."""

CONTOUR_COLUMNS = ["phase", "frame", "sop_instance_uid", "surface", "point", "row", "col"]
LANDMARK_COLUMNS = ["observer", "view", "frame", "sop_instance_uid", "point", "row", "col"]


def fill_contour_lines(lines: np.ndarray) -> np.ndarray:
    """Fill an overlay of closed contour lines into a label map.

    The region inside the outer contour is myocardium; a region enclosed by an inner
    contour (not reachable from outside through one line) is cavity, with the inner
    line itself. A single contour (the apical cap) gives myocardium only.

    Parameters
    ----------
    lines : (rows, cols) bool array
        One-pixel contour lines (8-connected), as InlineVF draws them.

    Returns
    -------
    (rows, cols) uint8 array
        :data:`BACKGROUND`, :data:`CAVITY`, :data:`MYOCARDIUM`.

    Examples
    --------
    >>> m = np.zeros((9, 9), bool); m[1, 1:8] = m[7, 1:8] = m[1:8, 1] = m[1:8, 7] = True
    >>> m[3, 3:6] = m[5, 3:6] = m[3:6, 3] = m[3:6, 5] = True
    >>> fill_contour_lines(m)[[0, 1, 2, 3, 4], 4].tolist()
    [0, 2, 2, 1, 1]
    """
    lines = np.asarray(lines, bool)
    regions, n = ndimage.label(~lines)  # 4-connected: an 8-connected line separates them
    edge = np.unique(np.concatenate([regions[0], regions[-1], regions[:, 0], regions[:, -1]]))
    outside = np.isin(regions, edge[edge > 0])
    near_outside = ndimage.binary_dilation(outside, iterations=2)
    enclosed = [r for r in range(1, n + 1) if r not in edge]
    cavity = np.isin(regions, [r for r in enclosed if not (near_outside & (regions == r)).any()])
    cavity |= lines & ndimage.binary_dilation(cavity)
    out = np.where(outside, BACKGROUND, MYOCARDIUM).astype(np.uint8)
    out[cavity] = CAVITY
    return out


def _locate(stack: SaxStack) -> dict[str, tuple[int, int]]:
    return {uid: (k, f) for k, row in enumerate(stack.sop_uids) for f, uid in enumerate(row)}


def _check_points(table: pd.DataFrame, key: str, path: str, shape: tuple[int, int] | None = None) -> None:
    rc = table[["row", "col"]].to_numpy(float)
    if not np.isfinite(rc).all():
        raise SubjectDataError(key, path, "labels", "NaN coordinates in the label file")
    outside = shape is not None and ((rc[:, 0] > shape[0] - 0.5).any() or (rc[:, 1] > shape[1] - 0.5).any())
    if (rc < -0.5).any() or outside:
        raise SubjectDataError(key, path, "labels", "negative or out-of-image coordinates in the label file")


def contour_masks(table: pd.DataFrame, stack: SaxStack, key: str, path: str) -> dict:
    """Core-lab ED/ES contours as label maps on the SAX stack.

    Parameters
    ----------
    table : DataFrame
        Columns :data:`CONTOUR_COLUMNS`: phase (ED/ES), the SOPInstanceUID of the image
        drawn on, surface (endo/epi), point order, row and col (pixels).
    stack : SaxStack
    key, path : str
        For errors.

    Returns
    -------
    dict
        ``labels`` (2, slices, rows, cols) uint8 for ED and ES, ``contoured`` (2, slices)
        bool, ``ed_frame`` and ``es_frame`` (the frames the contours were drawn on).

    Raises
    ------
    SubjectDataError
        Missing columns, an image that does not exist, NaN or negative coordinates,
        ED and ES drawn on several frames.
    """
    missing = [c for c in CONTOUR_COLUMNS if c not in table.columns]
    if missing:
        raise SubjectDataError(key, path, "labels", f"contour file lacks columns {', '.join(missing)}")
    shape = stack.images.shape[2:]
    _check_points(table, key, path, shape)
    phases = set(table.phase.astype(str).str.strip().str.upper())
    surfaces = set(table.surface.astype(str).str.strip().str.lower())
    if not phases <= {"ED", "ES"} or not surfaces <= {"endo", "epi"}:
        odd = sorted((phases - {"ED", "ES"}) | (surfaces - {"endo", "epi"}))
        raise SubjectDataError(key, path, "labels", f"contour file has phases or surfaces other than ED/ES and "
                               f"endo/epi ({', '.join(odd)})")
    table = table.assign(phase=table.phase.astype(str).str.strip().str.upper(),
                         surface=table.surface.astype(str).str.strip().str.lower())
    where = _locate(stack)
    unknown = sorted(set(table.sop_instance_uid) - set(where))
    if unknown:  # the UIDs themselves are not quoted: some scanners put the acquisition date in them
        raise SubjectDataError(key, path, "labels", f"contour file names {len(unknown)} image(s) that do not "
                               "exist in the short-axis stack")
    n_slices = stack.images.shape[0]
    labels = np.zeros((2, n_slices, *shape), np.uint8)
    contoured = np.zeros((2, n_slices), bool)
    frames = {}
    for p, phase in enumerate(("ED", "ES")):
        drawn = table[table.phase.str.upper() == phase]
        found = {where[u][1] for u in drawn.sop_instance_uid}
        if len(found) > 1:
            raise SubjectDataError(key, path, "labels", f"{phase} contours drawn on several frames {sorted(found)}")
        frames[phase] = found.pop() if found else -1
        for uid, cut in drawn.groupby("sop_instance_uid"):
            k = where[uid][0]
            polygons = {s: g.sort_values("point")[["row", "col"]].to_numpy(float) for s, g in cut.groupby("surface")}
            if "epi" in polygons:
                labels[p, k][polygon2mask(shape, polygons["epi"])] = MYOCARDIUM
            if "endo" in polygons:
                labels[p, k][polygon2mask(shape, polygons["endo"])] = CAVITY
            contoured[p, k] = True
    return {"labels": labels, "contoured": contoured, "ed_frame": frames["ED"], "es_frame": frames["ES"]}


def landmark_points(table: pd.DataFrame, stack: SaxStack, lax: dict[str, Cine], key: str, path: str) -> pd.DataFrame:
    """Observers' landmarks located in their images and mapped to patient coordinates.

    Returns
    -------
    DataFrame
        observer, view (SAX/2CH/4CH), slice (SAX, 0-based in the stack; -1 for LAX),
        frame, point, row, col (pixels) and x_lps, y_lps, z_lps (mm).

    Raises
    ------
    SubjectDataError
        Missing columns, an image that does not exist, NaN or negative coordinates.
    """
    missing = [c for c in LANDMARK_COLUMNS if c not in table.columns]
    if missing:
        raise SubjectDataError(key, path, "labels", f"landmark file lacks columns {', '.join(missing)}")
    where = {uid: ("SAX", k, f) for uid, (k, f) in _locate(stack).items()}
    for view, cine in lax.items():
        where |= {uid: (view[-3:].upper(), -1, f) for f, uid in enumerate(cine.sop_uids)}
    unknown = sorted(set(table.sop_instance_uid) - set(where))
    if unknown:
        raise SubjectDataError(key, path, "labels", f"landmark file names {len(unknown)} image(s) that do not exist")
    _check_points(table, key, path)
    if not pd.to_numeric(table.observer, errors="coerce").notna().all():
        raise SubjectDataError(key, path, "labels", "landmark file has observers that are not numbers")
    rows = []
    for r in table.itertuples():
        view, k, f = where[r.sop_instance_uid]
        if view == "SAX":
            affine, ijk = stack.affine_ijk_to_lps, [r.row, r.col, k]
        else:
            affine, ijk = lax[f"lax_{view.lower()}"].affine_ijk_to_lps, [r.row, r.col, 0.0]
        x, y, z = points_ijk_to_lps(np.array([ijk], float), affine)[0]
        rows.append({"observer": int(r.observer), "view": view, "slice": k, "frame": f, "point": r.point,
                     "row": float(r.row), "col": float(r.col), "x_lps": x, "y_lps": y, "z_lps": z})
    return pd.DataFrame(rows)
