"""Who the synthetic subjects are: demographics, risk factors, and the effects planted in their hearts.

Demographics and risk factors are drawn to resemble Paper A Table 1 (MESA protocol)
and Paper B Table 1 (UK Biobank protocol). Each risk factor then changes the heart
by a stated amount (:data:`PLANTED_EFFECTS`), so later chapters can print the
planted effect beside the recovered one. Cholesterol changes nothing: a null
control.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from cmrpipe.measures import dubois_bsa_m2
from cmrpipe.synth.anatomy import HeartShape, Perturbation

ENDO_BASAL_TAPER = 0.22  # the endocardium at the base is this much narrower than the ellipsoid's equator
LV_PROFILE_POWER = 3.0   # base-to-apex profile of both surfaces (2 would be an ellipsoid): a fuller, bullet-shaped LV
LV_PROFILE_TIP = 0.68    # ... raised to this power (1 / LV_PROFILE_POWER, 1/3, would be the blunt apex of a bullet):
                         # the lower third narrows towards a pointed apex
EPI_BASAL_TAPER = 0.12   # the epicardium's taper: less than the endocardium's, so the wall is thickest at the base
BASE_DESCENT_SHARE = 0.85  # the epicardium's long axis shortens by this share of the endocardium's at ES: the base
                           # descends about 11 mm (the mitral annulus's systolic excursion), the apical wall thickens
MIN_WALL_MM = 4.0  # no heart's free wall is thinner than this at ED
SEPTAL_FLATTENING = 0.03  # the endocardium drawn in across the septum (fraction of its radius in the middle): the
                          # septum about 0.8 mm (1.15 times) thicker than the free wall at ED, and the cavity flatter
                          # there (1.3 times or more is asymmetric septal hypertrophy)

PLANTED_EFFECTS = {
    # risk factor -> change of the ED heart (lengths in mm, others fractions)
    "hypertension": {"wall_mm": 1.5, "apex_wall_mm": 1.0, "note": "concentric hypertrophy: thicker wall, more mass"},
    "heart_failure": {"a_endo_frac": 0.20, "radial_shortening_frac": -0.55,
                      "note": "dilation and low ejection fraction"},
    "atrial_fibrillation": {"radial_shortening_frac": -0.12, "note": "slightly lower ejection fraction"},
    "diabetes": {"c_endo_frac": -0.05, "note": "small shape effect: a shorter, more spherical LV"},
    "smoking_current": {"wall_mm": 0.4, "c_endo_frac": -0.02, "note": "small shape effect"},
    "calcium_score_positive": {"wall_mm": 0.5, "note": "small shape effect"},
    "high_cholesterol": {"note": "no effect: null control"},
    "male": {"a_endo_frac": 0.06, "wall_mm": 1.4, "note": "men: larger cavity and thicker wall"},
    "bsa_per_m2": {"a_endo_frac": 0.15, "wall_mm": 0.8, "note": "per m2 of body surface above 1.9"},
}

# Prevalences (fractions) and distributions, from the papers' Table 1s. Heart failure
# and atrial fibrillation are enriched in the UK Biobank look (the paper's 0.6 % and
# about 3 %) so that a cohort of a few hundred subjects has cases to find.
MESA_TABLE1 = {"age": (61.5, 10.1), "female": 0.524, "sbp": (125.4, 21.3), "dbp": (71.8, 10.3),
               "hr": (62.8, 9.5), "diabetes": 0.092, "hypertension": 0.353,
               "smoking": {"never": 0.515, "former": 0.358, "current": 0.127},
               "high_cholesterol": 0.15, "calcium_score_positive": 0.50}
UKB_TABLE1 = {"age": (64.2, 7.5), "female": 0.520, "sbp": (138.0, 18.0), "dbp": (79.0, 10.0),
              "hr": (62.0, 10.0), "diabetes": 0.039, "hypertension": 0.306, "heart_failure": 0.05,
              "atrial_fibrillation": 0.08}


def draw_subject(rng: np.random.Generator, protocol: str) -> dict:
    """One subject's demographics and risk factors (no identifiers).

    Parameters
    ----------
    rng : numpy.random.Generator
    protocol : {"mesa", "ukb"}

    Returns
    -------
    dict
        age_years, sex, height_cm, weight_kg, bsa_m2, sbp_mmhg, dbp_mmhg, hr_bpm and
        0/1 risk factors (those of the protocol's paper; the others are 0).
    """
    t = MESA_TABLE1 if protocol == "mesa" else UKB_TABLE1
    female = rng.random() < t["female"]
    age = float(np.clip(rng.normal(*t["age"]), 45, 84))
    height = rng.normal(162.0, 6.5) if female else rng.normal(175.5, 7.0)
    weight = float(np.clip(rng.normal(71.0, 14.0) if female else rng.normal(84.0, 14.0), 42, 160))
    # hypertension grows likelier with age; diabetes with weight
    p_htn = t["hypertension"] * np.exp(0.04 * (age - t["age"][0])) / (1 + t["hypertension"] * (np.exp(0.04 * (age - t["age"][0])) - 1))
    htn = rng.random() < p_htn
    diabetes = rng.random() < t["diabetes"] * (1 + 0.02 * (weight - 77))
    sbp = rng.normal(*t["sbp"]) + (12.0 if htn else -5.0)
    dbp = rng.normal(*t["dbp"]) + (6.0 if htn else -2.5)
    subject = {
        "age_years": round(age, 1), "sex": "F" if female else "M", "height_cm": round(float(height), 1),
        "weight_kg": round(weight, 1), "bsa_m2": round(float(dubois_bsa_m2(weight, height)), 3),
        "sbp_mmhg": round(float(sbp)), "dbp_mmhg": round(float(dbp)), "hr_bpm": round(float(rng.normal(*t["hr"]))),
        "hypertension": int(htn), "diabetes": int(diabetes),
        "smoking_status": "never", "smoking_current": 0, "high_cholesterol": 0, "calcium_score_positive": 0,
        "heart_failure": 0, "atrial_fibrillation": 0,
    }
    if protocol == "mesa":
        status = rng.choice(list(t["smoking"]), p=list(t["smoking"].values()))
        subject.update(smoking_status=str(status), smoking_current=int(status == "current"),
                       high_cholesterol=int(rng.random() < t["high_cholesterol"]),
                       calcium_score_positive=int(rng.random() < t["calcium_score_positive"] * (0.6 + 0.015 * (age - 50))))
    else:
        subject.update(heart_failure=int(rng.random() < t["heart_failure"]),
                       atrial_fibrillation=int(rng.random() < t["atrial_fibrillation"]))
    return subject


def heart_for(subject: dict, rng: np.random.Generator, effects: dict = PLANTED_EFFECTS) -> HeartShape:
    """The ED heart of a subject: population variation plus the planted effects of its risk factors.

    The population (a woman of 1.9 m2 without risk factors) is sized so that volumes and
    mass resemble UK Biobank SSFP reference ranges (Petersen et al., JCMR 2017: LVEDVi
    about 75 ml/m2 in women and 82 in men, LVMi about 42 and 53 g/m2, EF about 60 %),
    with papillary muscles in the blood pool. The same hearts are imaged with both looks.
    """
    a_endo = rng.normal(27.5, 1.6)
    c_endo = rng.normal(86.5, 5.0)
    wall = rng.normal(5.5, 0.5)
    apex_wall = rng.normal(3.4, 0.4)
    radial, longitudinal = rng.normal(0.325, 0.04), float(np.clip(rng.normal(0.145, 0.02), 0.06, 0.22))
    factors = {k: float(subject.get(k, 0)) for k in effects}
    factors["male"] = float(subject["sex"] == "M")
    factors["bsa_per_m2"] = subject["bsa_m2"] - 1.9
    a_frac = c_frac = radial_frac = 0.0
    for name, x in factors.items():
        e = effects[name]
        wall += x * e.get("wall_mm", 0.0)
        apex_wall += x * e.get("apex_wall_mm", 0.0)
        a_frac += x * e.get("a_endo_frac", 0.0)
        c_frac += x * e.get("c_endo_frac", 0.0)
        radial_frac += x * e.get("radial_shortening_frac", 0.0)
    return HeartShape(
        a_endo_mm=float(a_endo * (1 + a_frac)), c_endo_mm=float(c_endo * (1 + c_frac)),
        wall_mm=float(max(wall, MIN_WALL_MM)), apex_wall_mm=float(max(apex_wall, 3.0)),
        radial_shortening=float(np.clip(radial * (1 + radial_frac), 0.05, 0.45)),
        long_shortening=longitudinal, epi_long_shortening=BASE_DESCENT_SHARE * longitudinal,
        endo_delta=_lv_surface(rng, ENDO_BASAL_TAPER, septal=SEPTAL_FLATTENING),
        epi_delta=_lv_surface(rng, EPI_BASAL_TAPER),
        rv_scale=float(rng.normal(1.0, 0.06)), papillary_mm=float(np.clip(rng.normal(6.3, 0.5), 5.4, 7.6)),
        fat_scale=epicardial_fat_scale(subject))


def _lv_surface(rng: np.random.Generator, basal_taper: float, **more) -> Perturbation:
    """One LV surface: its own smooth random variation on the population's base-to-apex profile."""
    return dataclasses.replace(Perturbation.random(rng, scale=0.035), basal_taper=basal_taper,
                               power=LV_PROFILE_POWER, tip=LV_PROFILE_TIP, **more)


def body_mass_index(subject: dict) -> float:
    """A subject's body mass index (kg/m2) from its ``weight_kg`` and ``height_cm``."""
    return subject["weight_kg"] / (subject["height_cm"] / 100.0) ** 2


def epicardial_fat_scale(subject: dict) -> float:
    """How much epicardial fat a subject's heart carries, relative to a typical 60-year-old woman with a
    body mass index of 27: more with age (about 2 % a year), body mass index (5 % per kg/m2) and in men
    (15 %), from 0.5 to 2 times. No draw of its own."""
    scale = (1.0 + 0.02 * (subject["age_years"] - 60.0) + 0.05 * (body_mass_index(subject) - 27.0)
             + 0.15 * (subject["sex"] == "M"))
    return float(np.clip(scale, 0.5, 2.0))


def effects_table(effects: dict = PLANTED_EFFECTS) -> pd.DataFrame:
    """The planted effects as a table: factor, parameter, size, note."""
    rows = []
    for factor, e in effects.items():
        sizes = {k: v for k, v in e.items() if k != "note"} or {"(none)": 0.0}
        for parameter, size in sizes.items():
            rows.append({"factor": factor, "parameter": parameter, "size": size, "note": e["note"]})
    return pd.DataFrame(rows).set_index(["factor", "parameter"])
