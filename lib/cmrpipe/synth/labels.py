"""Labels as core labs export them, made from the truth with realistic human variation.

- Contours: a core-lab reader's ED and ES endocardial and epicardial contours on
  every short-axis slice that cuts the LV (the epicardium alone on the apical cap), as points (row, col) in the pixels of the
  image they were drawn on (its SOPInstanceUID named). They follow the true surfaces
  (papillary muscles inside the endocardium) with smooth reader variation.
- Landmarks: two observers' placements of the mitral hinge points on 2CH and 4CH
  frames and of the two RV insertion points on end-diastolic short-axis slices, each
  the true point plus observer noise, with rare gross misplacements.
- Manual LV mass: slice summation of the reader's ED contours (epicardial minus
  endocardial area x pitch x 1.05 g/ml), for a subset of subjects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmrpipe.measures import MYOCARDIAL_DENSITY_G_PER_ML, polygon_area_mm2, slice_summation_ml

N_CONTOUR_POINTS = 48
READER_SD_MM = 0.5          # smooth radial variation of a reader's contour
OBSERVER_SD_MM = {"lax": 1.0, "sax": 1.4}  # per axis, per observer
GROSS_ERROR_RATE, GROSS_ERROR_MM = 0.02, (5.0, 10.0)
LAX_FRAMES_ANNOTATED = 5
SAX_SLICES_ANNOTATED = 5
MANUAL_MASS_FRACTION = {"mesa": 0.3, "ukb": 0.5}  # subjects with a manual LV mass
COVARIATES = ["key", "protocol", "age_years", "sex", "height_cm", "weight_kg", "bsa_m2", "sbp_mmhg", "dbp_mmhg",
              "hr_bpm", "hypertension", "diabetes", "smoking_status", "smoking_current", "high_cholesterol",
              "calcium_score_positive", "heart_failure", "atrial_fibrillation"]


def _smooth_radial_noise(rng: np.random.Generator, theta: np.ndarray, sd_mm: float) -> np.ndarray:
    """A smooth random radial offset around a contour (harmonics 0-3), SD about ``sd_mm``."""
    k = np.arange(4)[:, None]
    a, b = rng.normal(0, sd_mm / 2, (2, 4, 1))
    return (a * np.cos(k * theta) + b * np.sin(k * theta)).sum(axis=0)


def contours(s: dict, contraction: np.ndarray, es_frame: int, sops: dict, rng: np.random.Generator,
             to_rc) -> pd.DataFrame:
    """A reader's ED and ES contours on every SAX slice that cuts the LV.

    Parameters
    ----------
    s : dict
        The subject (see :func:`cmrpipe.synth.cohort.make_subject`).
    contraction : (n_frames,) float array
    es_frame : int
    sops : dict
        SOPInstanceUID of each view's frames.
    rng : numpy.random.Generator
    to_rc : callable
        ``to_rc(points_lps, view) -> (..., 2)`` pixel coordinates.

    Returns
    -------
    DataFrame
        key, phase, frame, slice, sop_instance_uid, surface, point, row, col.
    """
    heart, pose = s["heart"], s["pose"]
    theta = np.arange(N_CONTOUR_POINTS) * 2 * np.pi / N_CONTOUR_POINTS
    rows = []
    sax = [v for v in s["views"] if v.name.startswith("sax")]
    for phase, frame in (("ED", 0), ("ES", es_frame)):
        for k, view in enumerate(sax):
            w = float(pose.to_hrt(np.asarray(view.plane.position_lps))[2])
            endo = heart.contour_hrt(float(contraction[frame]), w, "endo", N_CONTOUR_POINTS)
            epi = heart.contour_hrt(float(contraction[frame]), w, "epi", N_CONTOUR_POINTS)
            if epi is None:
                continue
            # below the cavity's apex (the apical cap) the reader draws the epicardium alone
            for surface, pts in (("endo", endo), ("epi", epi)):
                if pts is None:
                    continue
                radial = np.column_stack([np.cos(theta), np.sin(theta), np.zeros_like(theta)])
                drawn = pts + radial * _smooth_radial_noise(rng, theta, READER_SD_MM)[:, None]
                rc = to_rc(pose.to_lps(drawn) + view.shift_lps, view)
                for i, (r, c) in enumerate(rc):
                    rows.append((s["key"], phase, frame, k + 1, sops[view.name][frame], surface, i,
                                 round(float(r), 3), round(float(c), 3)))
    return pd.DataFrame(rows, columns=["key", "phase", "frame", "slice", "sop_instance_uid", "surface", "point",
                                       "row", "col"])


def manual_mass_g(contour_table: pd.DataFrame, pixel_spacing_mm: tuple[float, float], pitch_mm: float) -> float:
    """LV mass from a reader's ED contours by slice summation (areas x pitch x 1.05 g/ml).

    A slice with an epicardial contour only (the apical cap) counts whole as myocardium.
    """
    ed = contour_table[contour_table.phase == "ED"]
    myo_mm2 = []
    for _, cut in ed.groupby("slice"):
        area = {name: polygon_area_mm2(g[["row", "col"]].to_numpy(), pixel_spacing_mm)
                for name, g in cut.groupby("surface")}
        myo_mm2.append(area["epi"] - area.get("endo", 0.0))
    return slice_summation_ml(myo_mm2, pitch_mm) * MYOCARDIAL_DENSITY_G_PER_ML


def observer_landmarks(key: str, truth: dict, n_frames: int, es_frame: int, sops: dict,
                       pixel_spacing_mm: tuple[float, float], rng: np.random.Generator) -> pd.DataFrame:
    """Two observers' landmark placements from the true pixel positions.

    Parameters
    ----------
    truth : dict
        ``mitral_2ch_rc``/``mitral_4ch_rc`` (n_frames, 2, 2) and ``rv_insertion_ed_rc``
        (n_slices, 2, 2, NaN where the slice has none), true (row, col) pixels.

    Returns
    -------
    DataFrame
        key, observer, view, frame, slice, sop_instance_uid, point, row, col.
    """
    frames = sorted({0, es_frame, *np.linspace(0, n_frames - 1, LAX_FRAMES_ANNOTATED).round().astype(int).tolist()})
    rv = truth["rv_insertion_ed_rc"]
    with_rv = [k for k in range(len(rv)) if np.isfinite(rv[k]).all()]
    if len(with_rv) > SAX_SLICES_ANNOTATED:
        mid = len(with_rv) // 2
        with_rv = with_rv[max(0, mid - SAX_SLICES_ANNOTATED // 2):][:SAX_SLICES_ANNOTATED]
    tasks = []  # (view, frame, slice, sop, point names, true rc (2, 2), sd)
    for view in ("2ch", "4ch"):
        for f in frames:
            tasks.append((view.upper(), f, 0, sops[f"lax_{view}"][f], ("mitral_a", "mitral_b"),
                          truth[f"mitral_{view}_rc"][f], OBSERVER_SD_MM["lax"]))
    for k in with_rv:
        tasks.append(("SAX", 0, k + 1, sops[f"sax_{k + 1:02d}"][0], ("rv_insertion_1", "rv_insertion_2"), rv[k],
                      OBSERVER_SD_MM["sax"]))
    rows = []
    for observer in (1, 2):
        for view, f, slice_no, sop, names, true_rc, sd_mm in tasks:
            for name, point in zip(names, true_rc):
                offset_mm = rng.normal(0, sd_mm, 2)
                if rng.random() < GROSS_ERROR_RATE:
                    angle = rng.uniform(0, 2 * np.pi)
                    offset_mm += rng.uniform(*GROSS_ERROR_MM) * np.array([np.cos(angle), np.sin(angle)])
                r, c = point + offset_mm / np.asarray(pixel_spacing_mm)
                rows.append((key, observer, view, f, slice_no, sop, name, round(float(r), 3), round(float(c), 3)))
    return pd.DataFrame(rows, columns=["key", "observer", "view", "frame", "slice", "sop_instance_uid", "point",
                                       "row", "col"])
