"""Generating a synthetic cohort: subjects, DICOM files, truth, manifest.

``generate_cohort(config, out_dir)`` writes, for each protocol::

    out_dir/
      cohort.json                 the configuration, written last: a cohort without it is unfinished
      .config.json                the configuration, written first: a resume must match it
      manifest.yaml               subjects, their image sources and label files (written with cohort.json)
      manifest.csv                every file with its sha256
      mesa/dicom/<key>/<series>/IM_<n>.dcm     MESA-like: a folder per subject and series
      ukb/bulk/<eid>_20209_2_0.zip             UK Biobank-like: SAX cine bulk zip
      ukb/bulk/<eid>_20208_2_0.zip             UK Biobank-like: long-axis bulk zip
      truth/<key>.h5              per subject: exact label maps, geometry, shifts, landmarks
      truth/subjects.csv          per subject: demographics, risk factors, exact measures
      truth/planted_effects.csv   the planted effects and their sizes
      truth/README.md             what every truth table and HDF5 dataset holds
      labels/contours/<key>.csv   a reader's ED/ES endo- and epicardial contours (pixels, per image)
      labels/landmarks/<key>.csv  two observers' mitral hinge and RV insertion points
      labels/manual_mass.csv      manual LV mass (slice summation of the contours), for a subset
      labels/covariates.csv       demographics and risk factors (no identifiers)
      .done/<key>.json            per-subject completion marker (files and checksums)

Each subject draws from its own generator, seeded by (seed, protocol, index), so
subjects can be made in any order, in parallel, and re-made alone: an interrupted
generation resumes from the subjects without a (complete, readable) completion marker,
and only with the configuration it was started with. Markers, zips, truth files and
cohort.json are written to a temporary name and renamed, so none is ever half written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from cmrpipe.geometry import points_lps_to_ijk
from cmrpipe.io.manifest import SCHEMA, sha256_file
from cmrpipe.measures import MYOCARDIAL_DENSITY_G_PER_ML
from cmrpipe.synth import anatomy, body, detail, faults, inlinevf, labels, render, subjects, trees
from cmrpipe.synth.body import BodyShape, Chest
from cmrpipe.synth.dicom import SeriesInfo, add_overlay, image_dataset, to_bytes, to_pixels
from cmrpipe.synth.protocols import Protocol, protocol
from cmrpipe.workers import n_cores, single_threaded

PROTOCOL_INDEX = {"mesa": 1, "ukb": 2}
UKB_EID_BASE = 1000000
LOOK_STREAM = 4  # the fourth seed word of a subject's image-detail generator
ATRIA_STREAM = 5  # and of its atria's shape (a stream of its own, so that every other draw stays as it was)
BODY_STREAM = 6  # and of its body's own shape (likewise)
PAPILLARY_STREAM = 7  # and of its papillary muscles' places, sizes and heads (likewise)
CURVE_STREAM = 8  # and of its LV's ovality and the bend of its axis (likewise)


TRUTH_README = """# Truth of a synthetic cohort (written by cmrpipe.synth)

## truth/subjects.csv, one row per subject
key, protocol, eid (UK Biobank look); fault, fault_file, expected_stage, expected_reason (planted
faults, empty for clean subjects); demographics and 0/1 risk factors; exact measures of the
analytic heart: lvedv_ml, lvesv_ml, lvef_pct, lv_mass_ed_g, lv_mass_es_g, lv_mass_g (= ED),
lvedvi_ml_m2, lvesvi_ml_m2, lvmi_g_m2 (DuBois BSA); manual_lv_mass_g (the reader's slice
summation, NaN when none); es_frame, n_frames, n_sax_slices, pixel_row_mm and pixel_col_mm (PixelSpacing);
heart_* shape parameters.
Papillary muscles count as blood pool (cavity), not myocardium (mass).
The trabeculae (LV and RV, with the moderator band), outflow tracts and great vessels (and the atrial walls and
the AV valves) are drawn in the images only and are not in the label maps.

## truth/planted_effects.csv
factor, parameter, size, note: how each risk factor changed the heart.

## truth/<key>.h5, one file per subject
attrs: key, protocol, n_frames, es_frame, pixel_spacing_mm (rows, cols), the measures above, heart (JSON of the shape),
  pose_axes_lps (columns u, v, w of the heart frame), pose_apex_lps, pose_bend_mm and pose_bend_height_mm
  (the heart's axis curves: the plane across it at height w above the apex is moved by pose_bend_mm,
  along u and v, times (1 - w / pose_bend_height_mm)**2, clipped to 0-1).
<view>/labels (frames, rows, cols) uint8, for view sax_01.. (base to apex), lax_2ch, lax_4ch:
  tissue label at each pixel centre, mid-slice, where it appears in the image (breath-hold
  shift included): 0 none, 1 LV cavity, 2 LV myocardium, 3 RV cavity, 4 RV wall,
  5 LA cavity, 6 epicardial fat, 7 papillary muscle, 8 RA cavity.
<view> attrs: position_lps, orientation, pixel_spacing_mm, thickness_mm (the DICOM geometry),
  shift_lps and shift_col_row_mm (the breath-hold shift of the anatomy in that image).
landmarks/mitral_2ch_lps, landmarks/mitral_4ch_lps (frames, 2, 3): mitral hinge points, LPS mm,
  where the anatomy is; landmarks/mitral_2ch_rc, landmarks/mitral_4ch_rc (frames, 2, 2): the same
  as (row, col) pixels, where they appear in the image.
landmarks/rv_insertion_ed_lps, landmarks/rv_insertion_es_lps (slices, 2, 3) and
  landmarks/rv_insertion_ed_rc, landmarks/rv_insertion_es_rc (slices, 2, 2): RV insertion points
  per SAX slice at ED and ES (NaN where the slice cuts no RV).
inlinevf/failure_ed_es (slices, 2) (UK Biobank look): InlineVF failure per slice at ED and ES,
  codes in attrs failure_codes (none, leak, shrunk, missing; no_lv where the slice cuts no LV
  myocardium, so no overlay); attrs endo_offset_mm, epi_offset_mm: its planted displacement.
  Basal and apical failures are likelier: the first and the last two slices that cut the LV.
"""


GENERATOR_VERSION = 22
# v22: the subcutaneous fat thins smoothly over the sternum (to 0.55 of its thickness beside it, between about 45 and
# 26 degrees from the front); v21 halved it at a line 37 degrees from the front, a step of about 9 mm in the fat and
# 7.5 mm in the chest wall's inner surface (the pleura) down each side of the whole chest; and the sternum lies in the
# wall's muscle layer, its back flush with the wall's inner surface (v21 placed it by the chest's depth alone, and it
# stood up to 12 mm proud of the wall into the mediastinum in deeper chests)
# v21: hearts turned about 45 degrees from the sagittal plane, seen from the feet (the long axis's mean direction
# (-0.59, 0.59, 0.45) from the apex to the base, was (-0.70, 0.45, 0.45), 57 degrees), so that the apex points
# forwards to the chest wall that it beats against (v20 left half the apices 14 mm or more from the wall, in lung, a
# third 30 mm or more); a pad of pericardial fat from the apex to the nearest chest wall where that lies within
# 12 mm, a lobulated lens 1.3 times 7 mm times the heart's fat scale across
# v20: a narrower LV with a tapering lower third: both surfaces' profile (1 - xi**3)**0.68 (v19's (1 - xi**2.5)**0.55
# was an egg, widest at a third of its depth, its apex round), the basal taper 0.22 of the endocardium's radius and 0.12
# of the epicardium's (were 0.27 and 0.16) fading out by 0.35 of the depth (was 0.45), the ED cavity radius 27.5 mm (was
# 28.6), its long axis 86.5 mm (was 84.0) and the free wall 5.5 mm (5.4): healthy UKB draws' widest ED cavity 51.9 / 57.3
# mm (v19 52.3 / 57.7), LVEDVi 71.6 / 77.2 ml/m2, LVMi 43.3 / 53.2 g/m2 (women / men); the fat patches over the LV
# thinning to none by 0.45 of the depth (v19's reached the apex and lay over the lateral wall that the 4CH cuts); the
# upper abdomen's filler below the diaphragm bowel loops in visceral fat, about half each (new label abdominal_fat;
# v19's was one soft tissue as grey as the myocardium, against which the inferior wall vanished in gradient echo); the
# AV valves' leaflets 2 mm thick as imaged (were 1 mm: a faint hairline at 1.8 mm pixels)
# v19: the LV's sections oval (the short diameter about 0.91 of the long, 0.85-0.97, at a random angle, the same for
# both surfaces and at every depth; v18's were round bar the small random harmonics) and its axis curved, the apex 9 mm
# (SD 3, 3-15) off the straight axis through the base, away from the RV (each plane across the axis moved as the square
# of its depth below the ES base: volumes unchanged); v18 drew a straight ventricle whose apex lay on its axis; the 2CH
# and 4CH planned through the bent apex; SSFP contrast from the balanced steady-state signal: myocardium 0.28 (blood 3.1
# times it; v18 0.22, 4 times, and hardly darker than the lung's 0.07 at 1.8 mm pixels, so that a wall against the lung
# showed as a hairline), liver 0.36 (0.30), skeletal muscle and diaphragm 0.21 (0.24), spleen 0.40 (0.36); gradient-echo
# liver 0.37 (was 0.27, darker than the myocardium's 0.28, where spoiled gradient echo at TR 8 ms makes it 1.3 times as
# bright) and spleen 0.27 (0.30); the base descending 10.8 mm at ES on average (SD 1.5; v18 7.3), the epicardium's long
# axis shortening by 0.85 of the endocardium's (was 0.7), which shortens by 0.145 (SD 0.02; was 0.12), with the radial
# shortening 0.325 (was 0.335) to keep the ejection fraction (healthy UKB draws: 61.0 % in women, 60.2 in men, as in
# v18); the septum drawn in by 0.03 of the cavity's radius (was 0.06), 1.15 times the free wall where v18's was 1.3
# times it (asymmetric septal hypertrophy's threshold) in a typical heart; a more pointed apex (both surfaces'
# base-to-apex profile (1 - xi**2.5)**0.55, where v18's bullet was (...)**0.4), with the mean free wall 5.4 mm (was 5.0)
# and ED cavity radius 28.6 mm (was 27.7): LVEDVi 72.1 / 77.6 ml/m2, LVMi 42.6 / 53.1 g/m2 in healthy UKB draws (women /
# men; v18 72.2 / 77.8, 42.3 / 53.3)
# v18: the septum thicker than the free wall (the endocardium drawn in across it by 0.06 of its radius, 1.75 mm at
# ED in the middle of the septum; v17's wall was of one thickness all round bar the random harmonics), with the
# population's mean ED cavity radius 27.7 mm (was 27.3) and free wall 5.0 mm (was 5.2), so that volumes and mass
# stay near the reference ranges; papillary muscles of radius 6.3 mm on average (SD 0.5, 5.4-7.6; was 5.5,
# 4.6-6.8), 10.5-11 mm across (equivalent diameter) at mid-ventricle at ED, where v17's were 9-10 mm; the vertebral
# bodies' edges rounded where they meet the discs (a quarter circle of 4 mm; v17's were square, and cut
# obliquely by a short-axis plane showed as sharp-cornered diamonds)
# v17: the anterior mediastinal fat fills the front of the mediastinum back to about the heart's middle, its back
# wandering (SD 8 mm), and the mediastinum's edges bulge with its lobules (SD 2 mm) and wander more (SD 0.35 of its
# half-width over 30-90 mm, was 0.25 over 40-120 mm; each half at least 0.3 of the model's width), its front
# narrowing in a curve (v16: fat in front of a coronal plane 0.45 of the chest's half-depth ahead of its middle,
# which showed beside the heart as a bright block with straight sides over grey tissue, and a triangle behind the
# sternum); the anterior and posterior descending coronary arteries drawn in
# the grooves' fat just beyond the RV's insertions, narrowing towards their ends (v16 placed them at the
# insertions themselves, inside the RV's wall, so that they were never seen); the RV's free wall thickening in
# systole by 40 % (v16: 3 mm at every phase, a hairline that never thickened)
# v16: each heart's papillary muscles moved, sized and their tips raised or lowered at random, and in 40 % of
# hearts a posteromedial muscle of two heads (v15: the same two muscles in every heart, differing only in size);
# the LV's trabeculae fading towards the base, nearly smooth there (ridges 0.15 as deep as at the apex, cords at
# 5 % of places; v15: 0.45 and 30 %, which scalloped a basal ES cavity like a gear's)
# v15: the RV's free wall an elliptical arc longer along the septum than deep, so that the RV is a half-moon on
# the LV in short axis (v14: a crescent about as deep as it was long, read as a second round chamber); the LV's
# trabecular cords, some free of the wall, thickening in systole (v14: fine ridges only, too thin to see); each
# pixel's sub-samples through the slice at random within their strata (v14: at n_through fixed depths, which
# imaged a surface crossing the slice obliquely as that many sharp copies)
# v14: the body's own shape is still round the heart where it is seated (v13: where it was first drawn, up to
# 40 mm away); a curved spine of waisted vertebral bodies, domed discs with dark end plates and each level's
# neural arch and spinous process (v13: a straight column of cylinders and slabs); the stomach's gas a rounded
# bubble clear of the liver (v13: cut along the liver's edge); the breasts' glandular tissue in lobes of each
# body's own (v13: a solid core); sharper tips of the RV crescent
# v13: each body its own shape (v12: every trunk the model's oval with a few low harmonics): smooth random 3-D
# fields bend the trunk and dent it away from the heart (none round it, so that the diaphragm's bed under the
# heart stays), make the fat layer and the chest-wall muscle thicker and thinner from place to place, head-foot
# as well as round the trunk (the skin moves; the ribcage keeps its smooth curve), raise and lower the domes of
# the diaphragm away from the heart, and widen and narrow each half of the mediastinum (v12: plane-like edges
# against the lungs); drawn from a stream of their own, so that every other draw stays as it was
# v12: papillary muscles as fingers along the wall, knobs in section, narrowing to a domed tip that a thin cleft
# parts from the wall at ED (v11: wedges on the wall, a star-shaped ES cavity); hepatic veins branching from the
# inferior vena cava through the liver (v11: a few round blobs); the RV crescent fuller in front, tapering to
# its inferior insertion, and reaching nearer the apex (v11: symmetric, a second circle beside the LV);
# irregular atria (v11: smooth ellipsoids); ribs a dark cortex round grey marrow, thicker chest-wall muscles;
# gradient-echo blood duller in the long-axis planes (in-plane saturation); noise grain coarser along the
# phase encoding, as the image is; the stomach's gas off the liver; the heart backed off a chest wall that
# curves within the columns it is seated by
# v11: pulmonary arteries and veins branching from the hila through the lungs (v10 showed only faint 1 mm
# strands and dots), the lung a little brighter at the back; the diaphragm moulded to the heart's underside (the
# apex and the inferior wall rest on it; v10 left lung between them and the domes); the RV a crescent with a
# flatter free wall (v10: a bulge like a second circle); arms with uneven outlines, an off-centre humerus and
# intermuscular septa; gradient-echo blood a little less bright against myocardium (about 1.7 : 1, was 2 : 1);
# the stomach and the spleen rounded bags under the diaphragm (v10: columns, straight-sided in oblique planes);
# the fat over the RV free wall in lenses that thin to their edges (v10: patches of even thickness), none on
# the apex's lateral side (v10: a thin ring there, a bull's eye in apical slices); SSFP bands wider and further
# from the heart, towards the edges of the field of view (v10: thin dark lines across the chest)
# v10: the RV's coarse trabeculae along its free wall and the moderator band across its cavity; the closed
# mitral valve tented into the LV towards its coaptation, away from the aortic root (v9 drew it flat), and
# thinner AV valves; papillary muscles oval towards the wall with lumpy outlines (v9: round discs); more
# epicardial fat, growing with age, body mass index and in men, the apical cap uneven (v9: a ring); noise
# amplified where the coils see little (the scanner's intensity normalisation); ribs oval, of uneven size and
# spacing, costal cartilage in front; fewer, larger hepatic vessels; the stomach's gas a rounded bubble (v9: a
# black parallelogram in oblique slices); a fuller RV towards its apex (RV/LV EDV about 0.93, was 0.79)
# v9: the heart fitted in the chest (against the front wall, on the diaphragm, clear of the spine and the aorta,
# the chest deepened where it would not fit; v8 hearts reached into the chest wall, the liver and the spine); a
# larger RV crescent that ejects less; shorter atria; the long axis about 30 degrees above the transverse plane
# and the RV a little below the LV; no pericardial sphere (a grey spike at the lateral AV groove); short, blunt
# pulmonary veins high on the left atrium; the diaphragm's muscle; a liver with one curved edge; women's breasts;
# coronary arteries; flow jets; sparser epicardial fat and trabeculae; the anterior mediastinum a triangle
# v8: the veins and the left atrial appendage drawn without a wall and with blunter ends (v7 showed grey spikes
# where the pulmonary veins tapered)
# v7: the RV a crescent round the septum that narrows to its apex, under a tricuspid annulus 8 mm apical of the
# mitral; a bullet-shaped LV, its wall thicker at the base and thinner at the apex; the venae cavae, pulmonary
# veins and left atrial appendage; deeper trabeculae; some signal in the lungs
# v6: planes displayed as a scanner shows them; an LV narrowing towards the base; atria over the annulus that
# fill in systole; a shorter RV; groove fat; papillary muscles on the wall; the heart against the chest wall
# and on the diaphragm; lung vessel strands; SSFP off-resonance bands
"""Changes whenever the generator writes different files for the same parameters: a cohort
made by another version is not reused."""


class SynthConfigError(ValueError):
    """A generator parameter that cannot be used; raised before any file is written."""


class StaleCohortError(SynthConfigError):
    """A cohort made with the same parameters by another version of the generator."""


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Attributes
    ----------
    profile : str
        The preset it came from (``smoke``, ``default``, ``paper``).
    n_subjects : int
        Subjects per protocol.
    protocols : tuple of str
        ``mesa`` and/or ``ukb``.
    seed : int
    frames : dict
        Cine frames per cycle for each protocol.
    n_in_plane, n_through : int
        Partial-volume sub-samples per pixel side and through the slice.
    shift_sd_mm : float
        Breath-hold misregistration: SD of each in-plane shift component.
    sentinel : str
        When not empty, planted in PatientName and PatientID to test that identifiers
        never reach outputs.
    faults : bool
        Plant the faults of :mod:`cmrpipe.synth.faults` in the last subjects of each
        protocol (each protocol keeps at least two clean subjects).
    workers : int
        Processes that generate subjects in parallel.
    """

    profile: str
    n_subjects: int
    protocols: tuple[str, ...]
    seed: int
    frames: dict
    n_in_plane: int = 2
    n_through: int = 3
    shift_sd_mm: float = 2.0
    sentinel: str = ""
    faults: bool = True
    workers: int = 1

    def __post_init__(self):
        if self.n_subjects < 1:
            raise SynthConfigError(f"n_subjects must be at least 1, got {self.n_subjects}")
        unknown = [p for p in self.protocols if p not in PROTOCOL_INDEX]
        if not self.protocols or unknown:
            raise SynthConfigError(f"unknown protocol(s) {unknown or '(none given)'}; known: mesa, ukb")
        if self.seed < 0:
            raise SynthConfigError(f"seed must be >= 0, got {self.seed}")
        for name in ("n_in_plane", "n_through", "workers"):
            if getattr(self, name) < 1:
                raise SynthConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.shift_sd_mm < 0:
            raise SynthConfigError(f"shift_sd_mm must be >= 0, got {self.shift_sd_mm}")
        for p in self.protocols:
            if self.frames.get(p, 0) < 2:
                raise SynthConfigError(f"frames[{p!r}] must be at least 2, got {self.frames.get(p)}")

    def to_dict(self) -> dict:
        """The configuration as JSON-ready data; a sentinel is recorded by its hash, never in clear."""
        values = {**dataclasses.asdict(self), "protocols": list(self.protocols)}
        values["sentinel"] = hashlib.sha256(self.sentinel.encode()).hexdigest()[:16] if self.sentinel else ""
        return values | {"generator_version": GENERATOR_VERSION}

    def fingerprint(self) -> dict:
        """What decides the cohort's content (everything but the number of workers)."""
        return {k: v for k, v in self.to_dict().items() if k != "workers"}


PROFILES = {
    # smoke: tiny, for tests and CI; few frames, coarse partial volume (one sample per pixel in plane: a smoke
    # subject takes 4.8 s instead of 10.9 with two per side, and its edges alias)
    "smoke": dict(n_subjects=24, frames={"mesa": 10, "ukb": 10}, n_in_plane=1, n_through=2),
    # default: enough subjects for the CPU models to learn, with the protocols' frame counts (UK Biobank 50)
    "default": dict(n_subjects=150, frames={"mesa": 20, "ukb": 50}, n_in_plane=2, n_through=3),
    # paper: the protocols' own frame counts (MESA-like 25, UK Biobank 50), finer partial volume
    "paper": dict(n_subjects=500, frames={"mesa": 25, "ukb": 50}, n_in_plane=3, n_through=3),
}


def config_for(profile: str, *, seed: int = 0, n_subjects: int | None = None,
               protocols: tuple[str, ...] = ("mesa", "ukb"), **overrides) -> SynthConfig:
    """The configuration of a preset profile, with changes.

    Raises
    ------
    SynthConfigError
        For an unknown profile or an invalid value.
    """
    if profile not in PROFILES:
        raise SynthConfigError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    values = {**PROFILES[profile], **overrides}
    if n_subjects is not None:
        values["n_subjects"] = n_subjects
    return SynthConfig(profile=profile, seed=seed, protocols=tuple(protocols), **values)


# ---- one subject ---------------------------------------------------------------------

def subject_key(protocol_name: str, index: int) -> str:
    """The subject key used everywhere (never a DICOM identifier), e.g. ``mesa_0001``."""
    return f"{protocol_name}_{index + 1:04d}"


def make_subject(config: SynthConfig, protocol_name: str, index: int) -> dict:
    """Draw one subject: demographics, heart, pose, chest, planes (nothing rendered yet)."""
    seed = [config.seed, PROTOCOL_INDEX[protocol_name], index]
    rng = np.random.default_rng(seed)
    # the image-only details (texture, trabeculae, vessels) draw from a generator of their own,
    # so that they leave every draw of ``rng`` (anatomy, truth, labels, noise) as it was
    look = np.random.default_rng(seed + [LOOK_STREAM])
    prot = protocol(protocol_name, config.frames[protocol_name])
    info = subjects.draw_subject(rng, protocol_name)
    heart = subjects.heart_for(info, rng)
    atria_rng = np.random.default_rng(seed + [ATRIA_STREAM])
    papillary_rng = np.random.default_rng(seed + [PAPILLARY_STREAM])
    heart = dataclasses.replace(heart, atrial_bumps=anatomy.random_atrial_bumps(atria_rng),
                                papillaries=anatomy.random_papillaries(papillary_rng))
    curve_rng = np.random.default_rng(seed + [CURVE_STREAM])
    oval, oval_angle = anatomy.random_oval(curve_rng)
    heart = dataclasses.replace(heart, **{name: dataclasses.replace(getattr(heart, name), ellipse=oval,
                                                                    ellipse_angle=oval_angle)
                                          for name in ("endo_delta", "epi_delta")})
    pose = dataclasses.replace(render.Pose.random(rng), bend_mm=anatomy.random_apex_bend(curve_rng),
                               bend_height_mm=heart.surfaces(1.0)["base_w_mm"])
    centre = pose.to_lps(np.array([0.0, 0.0, 0.5 * heart.surfaces(0.0)["base_w_mm"]]))
    chest = Chest(half_width_mm=float(rng.normal(165, 12)), half_depth_mm=float(rng.normal(112, 9)),
                  fat_mm=float(np.clip(rng.normal(12, 4), 4, 30)), diaphragm_z_mm=float(pose.apex_lps[2] - 4.0),
                  heart_centre_lps=tuple(map(float, centre)),
                  **Chest.irregularity(look),
                  breast_mm=Chest.breast_height_mm(info["sex"], subjects.body_mass_index(info), look))
    # the heart lies against the front of the chest and on the diaphragm: seated first in the smooth model's
    # body, whose own shape (still round the heart where it now lies) is then drawn, and seated again in it
    seated, smooth = seat_heart(heart, pose, chest)
    shape = BodyShape.random(np.random.default_rng(seed + [BODY_STREAM]), smooth.heart_centre_lps)
    pose, chest = seat_heart(heart, seated, dataclasses.replace(chest, shape=shape))
    chest = dataclasses.replace(chest, apex_fat=apex_fat_pad(heart, pose, chest))
    spacing = prot.draw_pixel_spacing(rng)
    views = (render.sax_planes(heart, pose, prot, spacing, rng, config.shift_sd_mm)
             + render.lax_planes(heart, pose, prot, spacing, rng, config.shift_sd_mm))
    key = subject_key(protocol_name, index)
    sentinel = config.sentinel
    study_month, study_day = (index % 12) + 1, (index % 27) + 1
    identity = {"key": key, "patient_name": f"SYNTH^{sentinel or 'SUBJECT'}^{index + 1:04d}",
                "patient_id": f"{sentinel}{900000 + 17 * index + PROTOCOL_INDEX[protocol_name]}",
                "study_date": f"2001{study_month:02d}{study_day:02d}",
                "birth_date": f"{2001 - int(info['age_years']) - 1}{study_month:02d}{study_day:02d}",
                "sex": info["sex"], "age_years": info["age_years"]}
    trabeculae = detail.Trabeculae.random(look)
    vessels = detail.GreatVessels.for_heart(heart, pose.axes_lps, look)
    lung_roots = [(pose.to_lps(np.asarray(point)), pose.axes_lps @ direction, radius)
                  for point, direction, radius in vessels.lung_roots]

    def in_heart(points_lps):
        points_hrt = pose.to_hrt(points_lps)
        return (heart.labels(points_hrt, 0.0) != anatomy.BACKGROUND) | vessels.near(points_hrt, 2.0)

    lung_trees = trees.VesselTree.grow(trees.LUNGS, lung_roots, chest, look, in_heart)
    (cava_top, cava_bottom), cava_mm = vessels.inferior_cava
    liver_roots = trees.hepatic_roots(chest, pose.to_lps(np.array([cava_top, cava_bottom])), cava_mm)
    return {"key": key, "protocol": prot, "info": info, "heart": heart, "pose": pose, "chest": chest,
            "pixel_spacing_mm": spacing, "views": views, "identity": identity, "rng": rng, "look_rng": look,
            "trabeculae": trabeculae, "vessels": vessels,
            "vessel_trees": (lung_trees, trees.VesselTree.grow(trees.LIVER, liver_roots, chest, look, in_heart))}


HEART_WALL_CLEARANCE_MM = 2.0  # the heart's front lies this far behind the anterior chest wall's inner surface
HEART_DIAPHRAGM_CLEARANCE_MM = 1.0  # and its underside this far above the diaphragm
WALL_BACK_OFF_MM, WALL_BACK_OFF_STEPS = 0.5, 20  # how the heart is moved back off a curving chest wall
WALL_PROBE_MM = 2.5  # until no point of it lies this close in front of the wall
CHEST_WALL = (body.AIR, body.SUBCUT_FAT, body.MUSCLE, body.RIB, body.RIB_MARROW, body.CARTILAGE, body.STERNUM)
HEART_SPINE_CLEARANCE_MM = 4.0  # and its back this far in front of the spine and the descending aorta


def seat_heart(heart: anatomy.HeartShape, pose: render.Pose, chest: Chest) -> tuple[render.Pose, Chest]:
    """Fit the heart in the chest, as it lies in a real one.

    The heart is moved forwards or backwards so that its front at ED (the RV, the LV and their fat)
    lies :data:`HEART_WALL_CLEARANCE_MM` behind the inner surface of the anterior chest wall; where
    its back would then reach the spine or the descending aorta, the chest is made deeper (by as
    little as leaves :data:`HEART_SPINE_CLEARANCE_MM`); and the diaphragm is raised or lowered so
    that the heart rests on it (:data:`HEART_DIAPHRAGM_CLEARANCE_MM` above it), and moulded to the
    heart's underside (:meth:`Chest.with_heart_bed`).

    Returns
    -------
    pose, chest
        The moved pose, and the chest with its new depth, the diaphragm's new height and the
        heart's new centre.
    """
    g = heart.surfaces(0.0)
    step = 3.0
    reach = 2.5 * g["a_epi_mm"] + 10.0
    axis = np.arange(-reach, reach, step)
    grid = np.stack(np.meshgrid(axis, axis, np.arange(-5.0, g["base_w_mm"] + 45.0, step), indexing="ij"), -1)
    grid = grid.reshape(-1, 3)
    grid = grid[heart.labels(grid, 0.0) != anatomy.BACKGROUND]
    behind = (body.SPINE, body.DISC, body.AORTA, body.CSF)

    def against_the_wall(pose: render.Pose, chest: Chest) -> render.Pose:
        # the front of the heart (its least y) in each 4 mm column along y, against the chest wall there
        (x, z), front = _column_extreme(pose.to_lps(grid), (0, 2), 1)
        pose = pose.moved([0.0, HEART_WALL_CLEARANCE_MM - float(np.nanmin(front - chest.front_wall_y_mm(x, z))), 0.0])
        # where the wall curves within a column (its sides, the pectorals' edges) a point may still reach it:
        # back a little at a time until none comes within WALL_PROBE_MM of it (the grid is coarse)
        for _ in range(WALL_BACK_OFF_STEPS):
            if not np.isin(chest.labels(pose.to_lps(grid) - [0.0, WALL_PROBE_MM, 0.0]), CHEST_WALL).any():
                break
            pose = pose.moved([0.0, WALL_BACK_OFF_MM, 0.0])
        return pose

    for _ in range(4):
        pose = against_the_wall(pose, chest)
        points = pose.to_lps(grid)
        # how far the back of the heart reaches into the spine or the aorta (with the clearance)
        probe = points + [0.0, HEART_SPINE_CLEARANCE_MM, 0.0]
        inside = np.isin(chest.labels(probe), behind)
        if not inside.any():
            break
        depth_mm = np.arange(0.0, 80.0, 1.0)
        line = probe[inside][:, None, :] - depth_mm[:, None] * [0.0, 1.0, 0.0]
        overlap = float(depth_mm[np.argmax(~np.isin(chest.labels(line), behind), axis=1)].max())
        # a deeper chest: its front comes forwards by the extra depth, the spine goes back by about 3/4 of it
        chest = dataclasses.replace(chest, half_depth_mm=chest.half_depth_mm + overlap / 1.75 + 1.0)
    else:
        # deepened on the last pass: forwards against the wall again (away from the spine, which went back)
        pose = against_the_wall(pose, chest)
        points = pose.to_lps(grid)
    (x, y), bottom = _column_extreme(points, (0, 1), 2)
    rise = float(np.min(bottom - chest.diaphragm_z(x, y))) - HEART_DIAPHRAGM_CLEARANCE_MM
    centre = pose.to_lps(np.array([0.0, 0.0, 0.5 * g["base_w_mm"]]))
    chest = dataclasses.replace(chest, diaphragm_z_mm=chest.diaphragm_z_mm + rise,
                                heart_centre_lps=tuple(map(float, centre)))
    return pose, chest.with_heart_bed(points, HEART_DIAPHRAGM_CLEARANCE_MM)


def _fibonacci_sphere(n: int) -> np.ndarray:
    """``n`` unit vectors spread evenly over the sphere (a Fibonacci lattice)."""
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    angle = np.pi * (3.0 - np.sqrt(5.0)) * k
    return np.stack([np.sqrt(1.0 - z * z) * np.cos(angle), np.sqrt(1.0 - z * z) * np.sin(angle), z], -1)


APEX_PROBES = _fibonacci_sphere(600)  # directions in which to look for the chest wall from the apex
APEX_PROBE_COS = 0.35  # those within acos(0.35), about 70 degrees, of the way the apex points


def apex_fat_pad(heart: anatomy.HeartShape, pose: render.Pose, chest: Chest) -> body.ApexFatPad | None:
    """The pericardial fat pad of a seated heart: from the outside of the apex's fat (on the axis, at ED)
    to the nearest chest wall within about 70 degrees of the way the apex points, where that lies within
    :data:`body.APEX_FAT_REACH_MM` (None where it lies further: lung lies between them); as thick as the
    heart's fat (its ``fat_scale``)."""
    w = np.arange(-30.0, 30.0, 0.5)
    on_axis = np.stack([np.zeros_like(w), np.zeros_like(w), w], -1)
    apex = pose.to_lps(on_axis[np.argmax(heart.labels(on_axis, 0.0) != anatomy.BACKGROUND)])
    ahead = APEX_PROBES[APEX_PROBES @ -pose.axes_lps[:, 2] > APEX_PROBE_COS]
    steps = np.arange(1.0, body.APEX_FAT_REACH_MM + 1.0, 1.0)
    rays = apex + steps[None, :, None] * ahead[:, None, :]
    wall = np.isin(chest.labels(rays.reshape(-1, 3)), CHEST_WALL).reshape(rays.shape[:2])
    if not wall.any():
        return None
    first = np.where(wall.any(axis=1), wall.argmax(axis=1), len(steps))
    nearest = int(np.argmin(first))
    length = float(steps[first[nearest]]) + 3.0  # into the wall a little
    return body.ApexFatPad(tuple(map(float, apex)), tuple(map(float, ahead[nearest])), length,
                           body.APEX_FAT_MM * heart.fat_scale)


def _column_extreme(points: np.ndarray, across: tuple[int, int], along: int, width_mm: float = 4.0):
    """The least coordinate ``along`` of the points in each column (``width_mm`` square in the two
    ``across`` coordinates), with the columns' mean ``across`` coordinates."""
    _, column = np.unique(np.round(points[:, across] / width_mm).astype(int), axis=0, return_inverse=True)
    column = column.ravel()
    least = np.full(column.max() + 1, np.inf)
    np.minimum.at(least, column, points[:, along])
    count = np.bincount(column)
    return tuple(np.bincount(column, points[:, k]) / count for k in across), least


def _measures(heart: anatomy.HeartShape, info: dict, es_s: float) -> dict:
    ed, es = heart.volumes_ml(0.0), heart.volumes_ml(es_s)
    mass_ed = ed["lv_myo_ml"] * MYOCARDIAL_DENSITY_G_PER_ML
    mass_es = es["lv_myo_ml"] * MYOCARDIAL_DENSITY_G_PER_ML
    return {"lvedv_ml": ed["lv_cavity_ml"], "lvesv_ml": es["lv_cavity_ml"],
            "lvef_pct": 100.0 * (1 - es["lv_cavity_ml"] / ed["lv_cavity_ml"]),
            "lv_mass_ed_g": mass_ed, "lv_mass_es_g": mass_es, "lv_mass_g": mass_ed,
            "lvedvi_ml_m2": ed["lv_cavity_ml"] / info["bsa_m2"], "lvesvi_ml_m2": es["lv_cavity_ml"] / info["bsa_m2"],
            "lvmi_g_m2": mass_ed / info["bsa_m2"]}


def write_subject(config: SynthConfig, protocol_name: str, index: int, out_dir: Path) -> dict:
    """Render and write one subject's DICOM and truth; return its truth row.

    The completion marker ``.done/<key>.json`` is written last.
    """
    s = make_subject(config, protocol_name, index)
    prot: Protocol = s["protocol"]
    key, rng, heart, pose = s["key"], s["rng"], s["heart"], s["pose"]
    contraction = anatomy.cycle_contraction(prot.n_frames)
    es_frame = int(np.argmax(contraction))
    rr_ms = 60000.0 / max(40.0, float(s["info"]["hr_bpm"]))
    trigger_ms = np.arange(prot.n_frames) * rr_ms / prot.n_frames
    files: list[Path] = []
    truth_path = out_dir / "truth" / f"{key}.h5"
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    fault = faults.assign(config.protocols, config.n_subjects, config.faults).get((protocol_name, index))
    writer = (_MesaWriter(out_dir, key, prot) if protocol_name == "mesa"
              else _UkbWriter(out_dir, key, index, prot, break_overlay=bool(fault and fault.name == "broken_overlay")))
    tmp_truth = truth_path.with_suffix(".h5.partial")
    sax_views = [v for v in s["views"] if v.name.startswith("sax")]
    sops: dict[str, list[str]] = {}
    ivf_offsets = (float(rng.normal(*inlinevf.ENDO_OFFSET_MM)), float(rng.normal(*inlinevf.EPI_OFFSET_MM)))
    ivf_failures = np.zeros((len(sax_views), 2), np.int8)
    lv_slices = {f: [k for k, v in enumerate(sax_views) if _cuts_lv(s, float(contraction[f]), v)] for f in (0, es_frame)}
    with h5py.File(tmp_truth, "w") as h5:
        for series_number, view in enumerate(s["views"], start=1):
            images, label_maps = render.render_view(view, heart, s["chest"], pose, prot, contraction, rng,
                                                    config.n_in_plane, config.n_through, s["look_rng"],
                                                    s["trabeculae"], s["vessels"], s["vessel_trees"])
            group = h5.create_group(view.name)
            group.create_dataset("labels", data=label_maps, compression="gzip", compression_opts=4, shuffle=True)
            plane = view.plane
            group.attrs.update(position_lps=plane.position_lps, orientation=plane.orientation,
                               pixel_spacing_mm=plane.pixel_spacing_mm, thickness_mm=plane.thickness_mm,
                               shift_lps=view.shift_lps,
                               shift_col_row_mm=[float(view.shift_lps @ np.asarray(plane.orientation[:3])),
                                                 float(view.shift_lps @ np.asarray(plane.orientation[3:]))])
            pixels = to_pixels(images)
            spacing = prot.pitch_mm if view.name.startswith("sax") else None
            sops[view.name] = writer.add_series(view, pixels, s["identity"], trigger_ms, spacing, config.seed,
                                                series_number)
            if protocol_name == "ukb" and view.name.startswith("sax"):
                k = int(view.name.split("_")[1]) - 1
                for j, f in enumerate((0, es_frame)):
                    mask, ivf_failures[k, j] = inlinevf.draw(s, contraction, f, k, lv_slices[f], view, rng,
                                                             ivf_offsets, _to_rc)
                    writer.add_inlinevf(view, pixels[f], mask, s["identity"], float(trigger_ms[f]),
                                        prot.n_frames, spacing, config.seed)
        true_landmarks = _write_landmarks(h5, s, contraction, es_frame)
        if protocol_name == "ukb":
            ivf = h5.create_group("inlinevf")
            ivf.create_dataset("failure_ed_es", data=ivf_failures)
            ivf.attrs.update(endo_offset_mm=ivf_offsets[0], epi_offset_mm=ivf_offsets[1],
                             failure_codes=list(inlinevf.FAILURES))
        measures = _measures(heart, s["info"], float(contraction[es_frame]))
        h5.attrs.update(key=key, protocol=protocol_name, n_frames=prot.n_frames, es_frame=es_frame,
                        pixel_spacing_mm=s["pixel_spacing_mm"], heart=json.dumps(dataclasses.asdict(heart)),
                        pose_axes_lps=pose.axes_lps, pose_apex_lps=pose.apex_lps, pose_bend_mm=pose.bend_mm,
                        pose_bend_height_mm=pose.bend_height_mm, **measures)
    os.replace(tmp_truth, truth_path)
    files += writer.close()
    files.append(truth_path)

    # the labels a core lab would export
    drawn = labels.contours(s, contraction, es_frame, sops, rng, _to_rc)
    placed = labels.observer_landmarks(key, true_landmarks, prot.n_frames, es_frame, sops, s["pixel_spacing_mm"],
                                       rng)
    manual_mass = (labels.manual_mass_g(drawn, s["pixel_spacing_mm"], prot.pitch_mm)
                   if rng.random() < labels.MANUAL_MASS_FRACTION[protocol_name] else float("nan"))
    for name, table in (("contours", drawn), ("landmarks", placed)):
        path = out_dir / "labels" / name / f"{key}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        files.append(path)
    damaged = faults.plant_in_files(fault, out_dir, files) if fault else None
    if fault and fault.name == "broken_overlay":
        damaged = writer.broken
    fault_row = {"fault": fault.name if fault else "", "fault_file": str(damaged.relative_to(out_dir)) if damaged else "",
                 "expected_stage": fault.expected_stage if fault else "",
                 "expected_reason": fault.expected_reason if fault else ""}
    row = {"key": key, "protocol": protocol_name, **fault_row, **s["info"], **measures, "manual_lv_mass_g": manual_mass,
           "es_frame": es_frame,
           "n_frames": prot.n_frames, "n_sax_slices": len(sax_views),
           "pixel_row_mm": s["pixel_spacing_mm"][0], "pixel_col_mm": s["pixel_spacing_mm"][1],
           **{f"heart_{k}": v for k, v in dataclasses.asdict(heart).items() if isinstance(v, float)}}
    if protocol_name == "ukb":
        row["eid"] = UKB_EID_BASE + index + 1
    listing = {str(p.relative_to(out_dir)): sha256_file(p) for p in files}
    _write_atomic(_marker(out_dir, key), json.dumps({"truth": row, "files": listing}, default=float))
    return row


def _marker(out_dir: Path, key: str) -> Path:
    return out_dir / ".done" / f"{key}.json"


def _write_atomic(path: Path, text: str) -> None:
    """Write a file so that it is either absent or complete (a crash leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    os.replace(tmp, path)


def _read_marker(out_dir: Path, key: str) -> dict | None:
    """A subject's completion marker, or None when it is missing or unreadable (the subject is made again)."""
    try:
        marker = json.loads(_marker(out_dir, key).read_text())
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and {"truth", "files"} <= marker.keys() else None


def _cuts_lv(s: dict, contraction: float, view: render.View) -> bool:
    """Whether a SAX plane cuts the LV myocardium at this phase."""
    w = float(s["pose"].to_hrt(np.asarray(view.plane.position_lps))[2])
    return s["heart"].contour_hrt(contraction, w, "epi", 8) is not None


def _write_landmarks(h5: h5py.File, s: dict, contraction: np.ndarray, es_frame: int) -> dict:
    """Exact landmarks: mitral hinges in 2CH/4CH at every frame, RV insertions per SAX slice at ED and ES.

    Each is stored in LPS (where the anatomy is) and in image (row, col) pixels of
    its view (where it appears, breath-hold shift included).
    """
    heart, pose = s["heart"], s["pose"]
    views = {v.name: v for v in s["views"]}
    group = h5.create_group("landmarks")
    found = {}
    for name, theta in (("lax_4ch", 0.0), ("lax_2ch", np.pi / 2)):
        view = views[name]
        # the plane in the heart frame: the annulus lies above the bend (Pose), where the frame is rigid
        normal = np.asarray(view.plane.normal) @ pose.axes_lps
        through = pose.unbent_hrt(view.plane.position_lps)
        lps = np.stack([pose.to_lps(heart.mitral_hinges_hrt(float(c), theta, normal, through)) for c in contraction])
        group.create_dataset(f"mitral_{name[-3:]}_lps", data=lps)
        group.create_dataset(f"mitral_{name[-3:]}_rc", data=_to_rc(lps + view.shift_lps, view))
        found[f"mitral_{name[-3:]}_rc"] = group[f"mitral_{name[-3:]}_rc"][:]
    sax = [v for v in s["views"] if v.name.startswith("sax")]
    for phase, frame in (("ed", 0), ("es", es_frame)):
        lps = np.full((len(sax), 2, 3), np.nan)
        rc = np.full((len(sax), 2, 2), np.nan)
        for k, view in enumerate(sax):
            w = float(pose.to_hrt(np.asarray(view.plane.position_lps))[2])
            points = heart.rv_insertions_hrt(float(contraction[frame]), w)
            if points is not None:
                lps[k] = pose.to_lps(points)
                rc[k] = _to_rc(lps[k] + view.shift_lps, view)
        group.create_dataset(f"rv_insertion_{phase}_lps", data=lps)
        group.create_dataset(f"rv_insertion_{phase}_rc", data=rc)
        found[f"rv_insertion_{phase}_rc"] = rc
    return found


def _to_rc(points_lps: np.ndarray, view: render.View) -> np.ndarray:
    ijk = points_lps_to_ijk(np.asarray(points_lps).reshape(-1, 3), view.plane.affine_ijk_to_lps)
    return ijk[:, :2].reshape(*np.shape(points_lps)[:-1], 2)


class _MesaWriter:
    """MESA-like layout: ``mesa/dicom/<key>/<SERIES>/IM_<n>.dcm``; SAX is one series of all slices."""

    SERIES = {"sax": "SAX cine", "lax_2ch": "2CH cine", "lax_4ch": "4CH cine"}

    def __init__(self, out_dir: Path, key: str, protocol: Protocol):
        self.root = out_dir / "mesa" / "dicom" / key
        self.protocol = protocol
        if self.root.exists():
            shutil.rmtree(self.root)
        self.files: list[Path] = []

    def add_series(self, view, pixels, identity, trigger_ms, spacing, seed, series_number):
        """Write one view's cine frames; return their SOPInstanceUIDs, frame by frame."""
        is_sax = view.name.startswith("sax")
        kind = "sax" if is_sax else view.name
        folder = self.root / kind.upper()
        folder.mkdir(parents=True, exist_ok=True)
        slice_index = int(view.name.split("_")[1]) - 1 if is_sax else 0
        info = SeriesInfo(self.SERIES[kind], {"sax": 10, "lax_2ch": 20, "lax_4ch": 30}[kind])
        n_frames = len(pixels)
        sops = []
        for f in range(n_frames):
            instance = slice_index * n_frames + f + 1
            ds = image_dataset(pixels[f], view.plane, subject=identity, series=info, protocol=self.protocol,
                               n_frames=n_frames, instance=instance, trigger_ms=float(trigger_ms[f]),
                               spacing_between_slices_mm=spacing, seed=seed)
            path = folder / f"IM_{instance:04d}.dcm"
            path.write_bytes(to_bytes(ds))
            self.files.append(path)
            sops.append(str(ds.SOPInstanceUID))
        return sops

    def close(self) -> list[Path]:
        """The files written."""
        return self.files


class _UkbWriter:
    """UK Biobank-like bulk zips: ``<eid>_20209_2_0.zip`` (SAX) and ``<eid>_20208_2_0.zip`` (long axis).

    Inside, flat DICOM files named by SOPInstanceUID and a ``manifest.csv`` that lists
    each file with its series description, as the UK Biobank's bulk files do. Series
    are named as DESIGN.md gives them: ``cine_segmented_sax_b1``.., ``cine_segmented_sax_inlinevf``,
    ``cine_segmented_lax_2ch`` and ``_4ch`` (no 3-chamber view: the outflow tract is not modelled).
    """

    def __init__(self, out_dir: Path, key: str, index: int, protocol: Protocol, break_overlay: bool = False):
        self.eid = UKB_EID_BASE + index + 1
        self.protocol = protocol
        self.break_overlay, self.broken = break_overlay, None
        self.folder = out_dir / "ukb" / "bulk"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.entries = {"20209": [], "20208": []}
        self.n_inlinevf = 0

    def add_series(self, view, pixels, identity, trigger_ms, spacing, seed, series_number):
        """Queue one view's cine frames for its zip; return their SOPInstanceUIDs, frame by frame."""
        if view.name.startswith("sax"):
            field, description = "20209", f"cine_segmented_sax_b{int(view.name.split('_')[1])}"
        else:
            field, description = "20208", f"cine_segmented_lax_{view.name[-3:]}"
        info = SeriesInfo(description, series_number)
        n_frames = len(pixels)
        sops = []
        for f in range(n_frames):
            ds = image_dataset(pixels[f], view.plane, subject=identity, series=info, protocol=self.protocol,
                               n_frames=n_frames, instance=f + 1, trigger_ms=float(trigger_ms[f]),
                               spacing_between_slices_mm=spacing, seed=seed)
            self.entries[field].append((f"{ds.SOPInstanceUID}.dcm", description, to_bytes(ds)))
            sops.append(str(ds.SOPInstanceUID))
        return sops

    def add_inlinevf(self, view, pixels, mask, identity, trigger_ms, n_frames, spacing, seed):
        """One InlineVF image: a copy of a SAX frame with the contours as an overlay (or none)."""
        self.n_inlinevf += 1
        info = SeriesInfo("cine_segmented_sax_inlinevf", 100)
        ds = image_dataset(pixels, view.plane, subject=identity, series=info, protocol=self.protocol,
                           n_frames=n_frames, instance=self.n_inlinevf, trigger_ms=trigger_ms, spacing_between_slices_mm=spacing,
                           seed=seed)
        if mask is not None:
            add_overlay(ds, mask, "InlineVF contours")
            if self.break_overlay and self.broken is None:  # a planted fault: half the overlay bits
                ds[0x6000, 0x3000].value = ds[0x6000, 0x3000].value[: len(ds[0x6000, 0x3000].value) // 4 * 2]
                self.broken = self.folder / f"{self.eid}_20209_2_0.zip" / f"{ds.SOPInstanceUID}.dcm"
        self.entries["20209"].append((f"{ds.SOPInstanceUID}.dcm", info.description, to_bytes(ds)))
        return str(ds.SOPInstanceUID)

    def close(self) -> list[Path]:
        """Write the bulk zips (each complete or absent) and return their paths."""
        paths = []
        for field, entries in self.entries.items():
            path = self.folder / f"{self.eid}_{field}_2_0.zip"
            tmp = path.with_suffix(".zip.partial")
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
                lines = ["filename,patientid,studyid,aet,host,date,time,series description"]
                for name, description, data in entries:
                    info = zipfile.ZipInfo(name, date_time=(2001, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    z.writestr(info, data)
                    lines.append(f"{name},{self.eid},1,SYNTH,synth,20010101,000000,{description}")
                info = zipfile.ZipInfo("manifest.csv", date_time=(2001, 1, 1, 0, 0, 0))
                z.writestr(info, "\n".join(lines) + "\n")
            os.replace(tmp, path)
            paths.append(path)
        return paths


# ---- the cohort ------------------------------------------------------------------------

def _check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write-probe"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise SynthConfigError(f"cannot write the cohort to {out_dir}: {err.strerror or err}") from None


class SubjectError(RuntimeError):
    """A subject could not be generated; the message names the subject."""


def _work(args):
    config, protocol_name, index, out_dir = args
    try:
        return write_subject(config, protocol_name, index, out_dir)
    except Exception as err:
        name = f"{type(err).__name__}: {err}"
        where = f" ({err.filename})" if isinstance(err, OSError) and err.filename else ""
        raise SubjectError(f"synthetic subject {subject_key(protocol_name, index)}{where}: {name}") from err


def generate_cohort(config: SynthConfig, out_dir: str | os.PathLike, progress: bool = True) -> pd.DataFrame:
    """Generate (or finish, or reuse) a cohort; return the truth table.

    A finished cohort (``cohort.json`` present, same configuration) is reused as it
    is. An unfinished one (``.config.json`` but no ``cohort.json``) resumes when it was
    started with the same configuration: subjects with a readable completion marker
    are kept, the others are made again. A cohort, finished or not, made with another
    configuration is refused.

    Raises
    ------
    SynthConfigError
        Before any file is written: unwritable folder, or a cohort made with another
        configuration.
    SubjectError
        A subject failed; the subjects made before it are kept for the next resume.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    _check_writable(out_dir)
    done_file, started_file = out_dir / "cohort.json", out_dir / ".config.json"
    wanted = config.fingerprint()
    for path, state in ((done_file, "finished"), (started_file, "unfinished")):
        if path.exists():
            try:
                made = json.loads(path.read_text())["config"]
            except (OSError, ValueError, KeyError, TypeError):
                raise SynthConfigError(f"{path} is unreadable; delete {out_dir} and generate again") from None
            made = {k: v for k, v in made.items() if k != "workers"}
            if made != wanted:
                changed = sorted(k for k in made.keys() | wanted.keys() if made.get(k) != wanted.get(k))
                error = StaleCohortError if changed == ["generator_version"] else SynthConfigError
                raise error(f"{out_dir} holds an {state} cohort made with other parameters "
                                       f"(differing: {', '.join(changed)}); choose another folder or delete it")
            if state == "finished":
                return pd.read_csv(out_dir / "truth" / "subjects.csv")
    if not started_file.exists() and any(out_dir.iterdir()):
        raise SynthConfigError(f"{out_dir} is not empty and holds no cohort; choose an empty folder")
    _write_atomic(started_file, json.dumps({"config": config.to_dict()}, indent=1))

    jobs = [(config, p, i, out_dir) for p in config.protocols for i in range(config.n_subjects)]
    todo = [j for j in jobs if _read_marker(out_dir, subject_key(j[1], j[2])) is None]
    if todo:
        bar = tqdm(total=len(todo), desc="synthetic subjects", unit="subject", disable=not progress)
        if config.workers > 1 and len(todo) > 1:
            with get_context("spawn").Pool(min(config.workers, len(todo)), initializer=single_threaded) as pool:
                for _ in pool.imap_unordered(_work, todo):
                    bar.update()
        else:
            for job in todo:
                _work(job)
                bar.update()
        bar.close()

    rows, listing = [], {}
    for _, p, i, _ in jobs:
        marker = _read_marker(out_dir, subject_key(p, i))
        rows.append(marker["truth"])
        listing.update(marker["files"])
    truth = pd.DataFrame(rows)
    truth.to_csv(out_dir / "truth" / "subjects.csv", index=False)
    (out_dir / "truth" / "README.md").write_text(TRUTH_README)
    subjects.effects_table().to_csv(out_dir / "truth" / "planted_effects.csv")
    truth[labels.COVARIATES].to_csv(out_dir / "labels" / "covariates.csv", index=False)
    manual = truth.loc[truth.manual_lv_mass_g.notna(), ["key", "manual_lv_mass_g"]]
    manual.rename(columns={"manual_lv_mass_g": "lv_mass_g"}).to_csv(out_dir / "labels" / "manual_mass.csv",
                                                                     index=False)
    for name in ("truth/subjects.csv", "truth/planted_effects.csv", "truth/README.md", "labels/covariates.csv",
                 "labels/manual_mass.csv"):
        listing[name] = sha256_file(out_dir / name)
    manifest = pd.DataFrame(sorted(listing.items()), columns=["path", "sha256"])
    manifest.to_csv(out_dir / "manifest.csv", index=False)
    write_manifest_yaml(config, truth, out_dir / "manifest.yaml")
    _write_atomic(done_file, json.dumps({"config": config.to_dict(), "n_files": len(listing)}, indent=1))
    return truth


def write_manifest_yaml(config: SynthConfig, truth: pd.DataFrame, path: Path) -> None:
    """The cohort manifest: every subject's image sources and label files, paths relative to it.

    The sha256 of every file is in ``manifest.csv`` beside it (named by ``checksums``).
    Label files a planted fault removed stay listed: the manifest says what a cohort
    should hold, and data preparation finds what is missing.
    """
    import yaml

    subjects_list = []
    for row in truth.itertuples():
        if row.protocol == "mesa":
            images = {"kind": "dicom_folder", "path": f"mesa/dicom/{row.key}"}
        else:
            eid = int(row.eid)
            images = {"kind": "ukb_zips", "paths": [f"ukb/bulk/{eid}_20209_2_0.zip", f"ukb/bulk/{eid}_20208_2_0.zip"]}
        subjects_list.append({"key": row.key, "protocol": row.protocol, "images": images,
                              "contours": f"labels/contours/{row.key}.csv",
                              "landmarks": f"labels/landmarks/{row.key}.csv"})
    document = {"schema": SCHEMA,
                "name": f"synthetic-{config.profile}-seed{config.seed}",
                "checksums": "manifest.csv", "covariates": "labels/covariates.csv",
                "manual_mass": "labels/manual_mass.csv", "truth": "truth/subjects.csv",
                "subjects": subjects_list}
    header = ("# cmrpipe cohort manifest, written by cmrpipe.synth: paths are relative to this file;\n"
              "# the sha256 of every file is in the checksums file.\n")
    path.write_text(header + yaml.safe_dump(document, sort_keys=False))


def cohort_for_run(params, progress: bool = True) -> tuple[Path, pd.DataFrame] | None:
    """Make (or reuse) the synthetic cohort of a run, in ``<run_dir>/cohort``.

    Parameters
    ----------
    params : cmrpipe.params.Params
        Its ``synth_profile``, ``seed``, ``n_subjects`` and ``protocols`` choose the cohort.

    Returns
    -------
    (Path, DataFrame) or None
        The cohort folder and its truth table; None when the run's cohort is not
        synthetic (``cohort_manifest`` names a real cohort). A cohort in the run
        folder made by another generator version is deleted and made again.
    """
    if params.cohort_manifest != "synthetic":
        return None
    config = config_for(params.synth_profile, seed=params.seed, n_subjects=params.n_subjects,
                        protocols=tuple(params.protocols), workers=n_cores())
    out = params.run_dir / "cohort"
    try:
        return out, generate_cohort(config, out, progress=progress)
    except StaleCohortError:  # the run's own cohort, made by an older generator: make it again
        shutil.rmtree(out)
        return out, generate_cohort(config, out, progress=progress)


def example_subjects(truth: pd.DataFrame) -> dict[str, str]:
    """The first subject without a planted fault, per protocol."""
    clean = truth[truth.fault.fillna("") == ""]
    return {p: str(g.key.iloc[0]) for p, g in clean.groupby("protocol", sort=False)}
