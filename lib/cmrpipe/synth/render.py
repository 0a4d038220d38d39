"""Imaging the synthetic anatomy: planes, partial volume, coil bias, Rician noise.

A subject's heart sits in the chest with a pose (heart frame -> LPS). Its planes
are a short-axis (SAX) stack perpendicular to the LV long axis from above the base
to below the apex, and single two- and four-chamber (2CH, 4CH) long-axis planes.
Each pixel's signal is the mean tissue signal over sub-samples spread across the
pixel and through the slice thickness (partial volume; through the slice at random within
equal strata, as a continuous slice profile would smear an oblique surface), blood darkened where fast flow
dephases it (the mitral inflow and LV outflow jets); the image is blurred by the
reconstruction's point-spread, gets faint phase-encode ghosts of the beating heart,
is multiplied by the receive field of the anterior and posterior surface-coil arrays
(bright near the chest wall and the back, darker in the middle) and a smooth
coil-bias field (and, for balanced SSFP, the dark off-resonance bands away from the
shimmed heart), and gets Rician noise, stronger where the coils see little (the
scanner's intensity normalisation amplified it there). Every plane was acquired in its own
breath-hold, so the anatomy is shifted in-plane by a few mm per plane; the shift is
part of the truth, and the DICOM geometry is the nominal (unshifted) one, as on a
scanner.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from scipy.ndimage import convolve1d, gaussian_filter

from cmrpipe.geometry import ImagePlane
from cmrpipe.synth import body
from cmrpipe.synth.anatomy import (BACKGROUND, LA_CAVITY, LV_CAVITY, PAPILLARY, RA_CAVITY, RV_CAVITY, RV_WALL,
                                   HeartShape)
from cmrpipe.synth.body import LUNG, Chest
from cmrpipe.synth.detail import (NO_VESSEL, VESSEL_WALL, GreatVessels, Trabeculae, atrioventricular_detail,
                                  coronary_arteries, flow_jets)
from cmrpipe.synth.trees import VesselTree
from cmrpipe.synth.protocols import Protocol

BLOOD_LABELS = (LV_CAVITY, RV_CAVITY, LA_CAVITY, RA_CAVITY)


@dataclass(frozen=True)
class Pose:
    """Heart frame -> patient frame: ``p_lps = axes_lps @ bent(p_hrt) + apex_lps``.

    ``axes_lps`` holds the heart frame's ``u``, ``v``, ``w`` unit vectors as columns. The
    heart is drawn about a straight long axis ``w``; ``bent`` curves that axis towards its
    apex: each plane across it (height ``w``) is moved, unturned, by ``bend_mm`` (along ``u``
    and ``v``) times ``(1 - w / bend_height_mm)**2``: not at all at ``bend_height_mm`` (the
    base at ES, so that the mitral annulus is never moved) and above, by all of ``bend_mm``
    at the apex (``w`` 0) and below. Moving each plane leaves its sections' areas, and so
    every volume, as they were; the short-axis planes (across ``w``) cut the same sections,
    moved.
    """

    axes_lps: np.ndarray
    apex_lps: np.ndarray
    bend_mm: tuple[float, float] = (0.0, 0.0)
    bend_height_mm: float = 0.0

    def bend(self, w: np.ndarray) -> np.ndarray:
        """The ``(u, v)`` displacement (mm) of the planes at heights ``w``, shape ``w.shape + (2,)``."""
        w = np.asarray(w, float)
        if not self.bend_height_mm:
            return np.zeros(w.shape + (2,))
        along = np.clip(1.0 - w / self.bend_height_mm, 0.0, 1.0) ** 2
        return along[..., None] * np.asarray(self.bend_mm, float)

    def to_lps(self, points_hrt: np.ndarray) -> np.ndarray:
        """Heart-frame points (mm) to LPS (mm)."""
        p = np.array(points_hrt, float)
        p[..., :2] += self.bend(p[..., 2])
        return p @ self.axes_lps.T + self.apex_lps

    def to_hrt(self, points_lps: np.ndarray) -> np.ndarray:
        """LPS points (mm) to the heart frame (mm)."""
        p = self.unbent_hrt(points_lps)
        p[..., :2] -= self.bend(p[..., 2])
        return p

    def unbent_hrt(self, points_lps: np.ndarray) -> np.ndarray:
        """LPS points (mm) to the heart frame's axes without the bend: the frame at the base and above, where
        the bend is nil, and the frame the planes are planned in."""
        return (np.asarray(points_lps) - self.apex_lps) @ self.axes_lps

    def on_axis_lps(self, w: float) -> np.ndarray:
        """The point (LPS, mm) at height ``w`` on the straight axis through the base, where the planes are
        planned: parallel short-axis planes centred on one line, long-axis planes through it."""
        return self.apex_lps + w * self.axes_lps[:, 2]

    def moved(self, offset_lps) -> "Pose":
        """The same orientation (and bend) with the heart moved by ``offset_lps`` (mm)."""
        return replace(self, apex_lps=self.apex_lps + np.asarray(offset_lps, float))

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Pose":
        """A typical heart orientation (apex anterior, left, inferior) with +-10 degree variation."""
        # apex -> base: right, posterior and superior, the long axis about 30 degrees above the transverse plane
        # and, seen from the feet, about 45 degrees from the sagittal plane (v20's 57 left the apex of many
        # hearts 20-40 mm from the chest wall, which it beats against)
        w = np.array([-0.59, 0.59, 0.45]) + rng.normal(0, 0.12, 3)
        w /= np.linalg.norm(w)
        # towards the RV: right, anterior and a little inferior (the RV lies on the diaphragm), so the 2CH
        # plane leans off the vertical
        u = np.array([-0.94, -0.33, -0.2]) + rng.normal(0, 0.10, 3)
        u -= w * (u @ w)
        u /= np.linalg.norm(u)
        v = np.cross(w, u)
        apex = np.array([72.0, -70.0, -45.0]) + rng.normal(0, 6.0, 3)
        return cls(np.column_stack([u, v, w]), apex)


@dataclass(frozen=True)
class View:
    """One acquired plane: its name, geometry and breath-hold shift (LPS, mm)."""

    name: str
    plane: ImagePlane
    shift_lps: np.ndarray


SAX_RV_DISPLAY_DEG = 155.0
"""Where the RV lies in a displayed SAX image: the angle (counter-clockwise from the image's
right) of the direction from the LV axis towards the RV, as operators rotate the stack."""


def sax_planes(heart: HeartShape, pose: Pose, protocol: Protocol, pixel_spacing_mm: tuple[float, float],
               rng: np.random.Generator, shift_sd_mm: float = 2.0) -> list[View]:
    """The SAX stack, base first: slices every pitch from half a pitch above the ED base to below the apex.

    Displayed as usual, as if seen from the apex: the RV on the image's left, a little
    above the LV (:data:`SAX_RV_DISPLAY_DEG`), so the anterior chest wall runs across the
    top; the normal is the long axis ``w``.
    """
    base_w = heart.surfaces(0.0)["base_w_mm"]
    pitch = protocol.pitch_mm
    n = int(np.floor((base_w + 0.5 * pitch) / pitch)) + 1
    u, v, w = pose.axes_lps.T
    # u is at SAX_RV_DISPLAY_DEG and v 90 degrees clockwise from it (v = w x u, seen from the apex)
    phi = np.deg2rad(SAX_RV_DISPLAY_DEG)
    along_col = np.cos(phi) * u + np.cos(phi - np.pi / 2) * v      # the image's right
    along_row = -(np.sin(phi) * u + np.sin(phi - np.pi / 2) * v)   # down the image
    views = []
    for k in range(n):
        centre = pose.on_axis_lps(base_w + 0.5 * pitch - k * pitch)
        plane = ImagePlane.centred(centre + _fov_offset(pose, w), along_col, along_row, pixel_spacing_mm,
                                   protocol.rows, protocol.cols, protocol.thickness_mm)
        views.append(View(f"sax_{k + 1:02d}", plane, _shift(plane, rng, shift_sd_mm)))
    return views


ANTERIOR, LEFT, SUPERIOR, POSTERIOR = (np.array(d, float) for d in ((0, -1, 0), (1, 0, 0), (0, 0, 1), (0, 1, 0)))


def lax_planes(heart: HeartShape, pose: Pose, protocol: Protocol, pixel_spacing_mm: tuple[float, float],
               rng: np.random.Generator, shift_sd_mm: float = 2.0) -> list[View]:
    """The 4CH plane (contains the long axis and the RV direction) and the 2CH plane (perpendicular).

    Both are planned, as operators plan them, through the apex (off the straight axis where the
    heart is bent: :class:`Pose`) and the middle of the mitral annulus at ED: they contain the
    line between the two, the 4CH the RV direction ``u`` nearly and the 2CH ``v``. Each is
    displayed in the conventions of a standard plane, as scanners show oblique planes: the
    4CH like a transverse image, with the anterior side at the top and the patient's left
    on the image's right, so the apex points up and to the right and the atria lie below;
    the 2CH like a sagittal image, with the head at the top and the back on the right, so
    the apex points down and to the left.
    """
    base_w = heart.surfaces(0.0)["base_w_mm"]
    u, v, w = pose.axes_lps.T
    apex, base = pose.to_lps(np.zeros(3)), pose.on_axis_lps(base_w)
    long_axis = (base - apex) / np.linalg.norm(base - apex)
    centre = apex + 0.55 * (base - apex)
    views = []
    for name, across, up, right in (("lax_4ch", v, ANTERIOR, LEFT), ("lax_2ch", u, SUPERIOR, POSTERIOR)):
        normal = across - long_axis * (across @ long_axis)
        along_col, along_row = display_axes(normal, up, right)
        plane = ImagePlane.centred(centre + _fov_offset(pose, normal), along_col, along_row, pixel_spacing_mm,
                                   protocol.rows, protocol.cols, protocol.lax_thickness_mm)
        views.append(View(name, plane, _shift(plane, rng, shift_sd_mm)))
    return views


def display_axes(normal: np.ndarray, up: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-plane axes of a plane shown with ``up`` (projected) at the top and ``right`` towards the right.

    Parameters
    ----------
    normal : (3,) array
        The plane's normal (either sign: the returned axes fix it).
    up, right : (3,) arrays
        Patient directions to show at the top and on the right; ``up`` must not be
        along the normal.

    Returns
    -------
    along_col, along_row : (3,) arrays
        Unit vectors along a row (to the right) and down a column.
    """
    n = np.asarray(normal, float) / np.linalg.norm(normal)
    top = np.asarray(up, float) - n * (n @ up)
    top /= np.linalg.norm(top)
    across = np.cross(n, top)
    if across @ right < 0:
        across = -across
    return across, -top


def _fov_offset(pose: Pose, normal: np.ndarray) -> np.ndarray:
    """The field of view is not centred on the heart: shift it in-plane towards the body's centre."""
    offset = -0.35 * np.array([pose.apex_lps[0], pose.apex_lps[1], 0.0])
    n = normal / np.linalg.norm(normal)
    return offset - n * (offset @ n)


def _shift(plane: ImagePlane, rng: np.random.Generator, sd_mm: float) -> np.ndarray:
    """An in-plane breath-hold shift (LPS, mm), at most 2.5 SD in each direction."""
    o = np.asarray(plane.orientation)
    d = np.clip(rng.normal(0.0, sd_mm, 2), -2.5 * sd_mm, 2.5 * sd_mm)
    return d[0] * o[:3] + d[1] * o[3:]


def _subsample_offsets(n_in_plane: int, n_through: int) -> np.ndarray:
    """Sub-sample positions as fractions (row, col, through-plane) within a pixel's voxel."""
    a = (np.arange(n_in_plane) + 0.5) / n_in_plane - 0.5
    b = (np.arange(n_through) + 0.5) / n_through - 0.5
    return np.stack(np.meshgrid(a, a, b, indexing="ij"), -1).reshape(-1, 3)


def bias_field(plane: ImagePlane, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A smooth multiplicative coil-bias field (rows, cols), 1 on average, peak deviation ~ ``strength``."""
    r = np.linspace(-1, 1, plane.rows)[:, None]
    c = np.linspace(-1, 1, plane.cols)[None, :]
    g = rng.normal(0, 1, 2)
    cr, cc = rng.uniform(-0.6, 0.6, 2)
    bump = np.exp(-((r - cr) ** 2 + (c - cc) ** 2) / 0.8)
    field = 1 + strength * (0.4 * (g[0] * r + g[1] * c) / max(1e-9, np.hypot(*g)) + 0.6 * (bump - bump.mean()))
    return np.clip(field, 0.3, None)


COIL_DEPTH_MM = 50.0         # receive-field fall-off depth of one surface-coil element
COIL_STANDOFF_MM = 15.0      # elements lie this far outside the skin (anterior) or under the back
COIL_X_FRACTIONS = (-0.55, 0.0, 0.55)   # element positions across the chest, fractions of its half width
COIL_Z_OFFSETS_MM = (-70.0, 0.0, 70.0)  # element positions head-foot about the heart
COIL_GAIN_RANGE = (0.3, 2.6)  # limits of the receive field relative to the heart's centre
COIL_POWER = 2.0             # an element's squared sensitivity is (D**2 / (D**2 + d**2))**COIL_POWER


def coil_sensitivity(points_lps: np.ndarray, chest: Chest, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Receive field of an anterior and a posterior surface-coil array, 1 at the heart's centre, as left
    in the images by the scanner's intensity normalisation, and what that normalisation did to the noise.

    Each element's sensitivity falls off as ``(D**2 / (D**2 + d**2))**(COIL_POWER / 2)`` with the
    distance ``d`` from it; the elements are combined by root sum of squares. The scanner divides
    the raw image by part of this field, so that ``strength`` of its fall-off is left in the signal;
    the noise, uniform in the raw image, is divided by the same factor and so rises where the
    coils see little (the middle of the body and the air beside it) and falls next to them.

    Parameters
    ----------
    points_lps : (..., 3) float array
        Patient coordinates (mm) of the body (after any breath-hold shift).
    chest : Chest
        Places the arrays in front of the chest and under the back.
    strength : float
        0 gives a uniform field; 1 the full fall-off (no normalisation).

    Returns
    -------
    signal_gain, noise_gain : (...) float32 arrays
        Factors on the signal and on the noise, both 1 at the heart's centre.
    """
    def field(p):
        total = np.zeros(p.shape[:-1], np.float32)
        for side in (-1.0, 1.0):
            y = side * (chest.half_depth_mm + COIL_STANDOFF_MM)
            for fx in COIL_X_FRACTIONS:
                for dz in COIL_Z_OFFSETS_MM:
                    element = np.array([fx * chest.half_width_mm, y, chest.heart_centre_lps[2] + dz], np.float32)
                    d2 = np.sum((p - element) ** 2, axis=-1)
                    total += (COIL_DEPTH_MM**2 / (COIL_DEPTH_MM**2 + d2)) ** COIL_POWER
        return np.sqrt(total)

    p = np.asarray(points_lps, np.float32)
    raw = np.clip(field(p) / field(np.asarray(chest.heart_centre_lps, np.float32)[None])[0], *COIL_GAIN_RANGE)
    signal_gain = 1.0 + strength * (raw - 1.0)
    return signal_gain.astype(np.float32), (signal_gain / raw).astype(np.float32)


def render_view(view: View, heart: HeartShape, chest: Chest, pose: Pose, protocol: Protocol,
                contraction: np.ndarray, rng: np.random.Generator, n_in_plane: int = 2,
                n_through: int = 3, look_rng: np.random.Generator | None = None,
                trabeculae: Trabeculae | None = None,
                vessels: GreatVessels | None = None,
                vessel_trees: tuple[VesselTree, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Image one plane at every frame.

    Parameters
    ----------
    view : View
        The plane and its breath-hold shift.
    heart, chest, pose : the subject's anatomy
    protocol : Protocol
        Tissue signals, noise and bias.
    contraction : (n_frames,) float array
        ``s`` of each frame (0 = ED, 1 = ES).
    rng : numpy.random.Generator
        Noise and bias.
    n_in_plane, n_through : int
        Sub-samples per pixel side and through the slice (partial volume).
    look_rng : numpy.random.Generator, optional
        Tissue texture and flow variation (a generator of its own, so that adding
        realism draws nothing from ``rng``); a fixed one when None.
    trabeculae, vessels, vessel_trees : optional
        Image-only anatomy (:mod:`cmrpipe.synth.detail`; the lungs' and the liver's vessels,
        :mod:`cmrpipe.synth.trees`); none when None or empty.

    Returns
    -------
    images : (n_frames, rows, cols) float32 array
        Magnitude images, relative signal (noise included).
    labels : (n_frames, rows, cols) uint8 array
        Heart labels at the pixel centres, mid-slice (the truth; 0 outside the heart).
    """
    look_rng = np.random.default_rng(0) if look_rng is None else look_rng
    plane = view.plane
    affine = plane.affine_ijk_to_lps
    rows, cols = plane.rows, plane.cols
    rr, cc = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    offsets = _subsample_offsets(n_in_plane, n_through)
    normal = plane.normal
    spacing = np.asarray(plane.pixel_spacing_mm, float)
    fields = _tissue_fields(look_rng, (rows, cols), spacing)
    view_gain = float(np.clip(1.0 + look_rng.normal(0.0, protocol.view_gain_sd), 0.8, 1.2))
    # sub-sample points in LPS, shape (rows, cols, n_sub, 3); the anatomy moves by the shift. Through the slice
    # each pixel's sub-samples lie at random within their strata, so that a surface crossing the slice
    # obliquely is smeared over its path (as by the slice profile), not imaged as n_through sharp copies
    centres = rr[..., None] * affine[:3, 0] + cc[..., None] * affine[:3, 1] + affine[:3, 3]
    through = offsets[:, 2] + look_rng.uniform(-0.5, 0.5, (rows, cols, len(offsets))) / n_through
    sub = offsets[:, 0, None] * affine[:3, 0] + offsets[:, 1, None] * affine[:3, 1]
    points = (centres[:, :, None, :] + sub[None, None] + (through * plane.thickness_mm)[..., None] * normal
              - view.shift_lps).astype(np.float32)
    body_labels = chest.labels(points)
    body_signal = _textured_body(protocol.body_intensity, body_labels, fields)
    # supine, the dependent (posterior) lung holds more blood and water than the front: brighter
    lung = body_labels == LUNG
    body_signal[lung] *= 1.0 + LUNG_DEPENDENT_GAIN * np.clip(points[..., 1][lung] / chest.half_depth_mm, -1.0, 1.0)
    # which pixels can hold heart tissue at any phase: test the pixel centres with a margin
    pts_hrt = pose.to_hrt(points.reshape(-1, 3)).reshape(points.shape)
    centre_hrt = pose.to_hrt(centres - view.shift_lps)
    g = heart.surfaces(0.0)
    reach = 2.2 * g["a_epi_mm"] + 10.0
    in_truth = ((centre_hrt[..., 2] > -8.0 - plane.thickness_mm) & (centre_hrt[..., 2] < 1.6 * g["base_w_mm"] + 10.0)
                & (np.abs(centre_hrt[..., 0]) < reach) & (np.abs(centre_hrt[..., 1]) < reach))
    near = in_truth | (vessels.near(centre_hrt, 0.5 * plane.thickness_mm + 6.0) if vessels else False)
    near_pts = pts_hrt[near]  # (n_near, n_sub, 3)
    centre_truth = centre_hrt[in_truth]
    heart_pts = near_pts[in_truth[near]]  # only these can hold heart tissue
    heart_rows = np.flatnonzero(in_truth[near])
    vessel_zone = vessels.near(near_pts, 4.0) if vessels else np.zeros(near_pts.shape[:-1], bool)
    heart_signal_lut = protocol.heart_intensity
    vessel_cache = {}

    n_frames = len(contraction)
    images = np.empty((n_frames, rows, cols), np.float32)
    labels = np.zeros((n_frames, rows, cols), np.uint8)
    bias = bias_field(plane, rng, protocol.bias_strength).astype(np.float32)
    coil, noise_gain = coil_sensitivity(centres - view.shift_lps, chest, protocol.coil_strength)
    bias *= coil * np.float32(view_gain)
    noise_sigma = protocol.noise_sigma * noise_gain
    psf_px = protocol.psf_mm / spacing
    bands = (off_resonance_bands(centres - view.shift_lps, chest.heart_centre_lps, look_rng, spacing, protocol.banding)
             if protocol.banding > 0 else None)
    ghost_shift = rows // 3
    es_frame = int(np.argmax(contraction))
    texture = 1 + protocol.texture * smooth_field(rng, (rows, cols), 3.0 / spacing)
    base_image = body_signal.mean(axis=-1) * texture
    tree_signal = sum((_vessel_tree_signal(tree, body_labels, points, protocol.body_intensity, spacing)
                       for tree in vessel_trees), np.zeros((rows, cols), np.float32))
    base_image += tree_signal
    base_image += _lung_vessels(rng, chest.labels(centres - view.shift_lps) == LUNG, spacing, fields)
    blood = np.isin(np.arange(max(heart_signal_lut) + 1), BLOOD_LABELS)
    near_low = fields["low"][near][:, None]
    # inflow: fresh blood entering the slice is brighter towards the base (gradient echo)
    inflow = 1 + protocol.inflow_basal * np.clip(centre_hrt[near][:, 2] / g["base_w_mm"], 0.0, 1.3)[:, None] ** 2
    # and the blood is saturated where it flows along the plane (long-axis views) rather than through it
    across = abs(float(np.dot(normal, pose.axes_lps[:, 2])))
    inflow = inflow * (1.0 - protocol.in_plane_saturation * (1.0 - across))
    flow_a, flow_b = fields["flow_a"][near][:, None], fields["flow_b"][near][:, None]
    myo_value = float(heart_signal_lut[PAPILLARY])
    # how fast the LV empties (ejection) or fills at each frame, 0-1, for the flow jets
    rate = np.diff(np.asarray(contraction, float), append=float(contraction[0]))
    rate = rate / max(float(np.abs(rate).max()), 1e-9)
    wall_value = float(heart_signal_lut[RV_WALL])
    for f, s in enumerate(contraction):
        signal = body_signal[near].copy()
        lab = np.zeros(near_pts.shape[:-1], np.uint8)
        lab[heart_rows] = heart.labels(heart_pts, float(s))
        inside = lab != BACKGROUND
        # inflow: blood is brighter while it moves fastest (early systole and rapid filling), and flow
        # makes it uneven, in a pattern that drifts through the cycle
        phase = 2 * np.pi * f / n_frames
        flow = (1 + protocol.blood_flow * np.sin(phase) ** 2
                + protocol.blood_texture * (np.cos(phase) * flow_a + np.sin(phase) * flow_b)) * inflow
        tissue = 1 + HEART_LOW_SD * near_low
        heart_value = _lookup(heart_signal_lut, lab) * np.where(blood[lab], flow, tissue)
        signal[inside] = heart_value[inside]
        if trabeculae is not None:
            cavity = lab == LV_CAVITY
            trab = np.zeros_like(cavity)
            trab[cavity] = trabeculae.mask(heart, near_pts[cavity], float(s))
            rv_cavity = lab == RV_CAVITY
            trab[rv_cavity] = trabeculae.rv_mask(heart, near_pts[rv_cavity], float(s))
            signal[trab] = myo_value * tissue[np.nonzero(trab)[0], 0]
            valves_closed = not (es_frame + 1 < f < n_frames - 1)
            walls = atrioventricular_detail(heart, near_pts, lab, float(s), valves_closed)
            walls |= coronary_arteries(heart, near_pts, lab, float(s))
            signal[walls] = myo_value * tissue[np.nonzero(walls)[0], 0]
            if protocol.jet > 0:
                signal *= 1.0 - protocol.jet * flow_jets(heart, near_pts, lab, float(s), max(-rate[f], 0.0),
                                                         max(rate[f], 0.0))
        if vessels is not None:
            # the vessels move little: image them at a few phases only
            step = round(float(s) * VESSEL_PHASE_STEPS)
            if step not in vessel_cache:
                vessel_cache[step] = vessels.labels(heart, near_pts[vessel_zone], step / VESSEL_PHASE_STEPS)
            code = vessel_cache[step].copy()
            code[inside[vessel_zone]] = NO_VESSEL
            zone = vessel_zone
            values = np.array([0.0, heart_signal_lut[LV_CAVITY], heart_signal_lut[RV_CAVITY], wall_value], np.float32)
            hit = code != NO_VESSEL
            idx = np.nonzero(zone)
            vessel_signal = values[code] * np.where(code == VESSEL_WALL, 1.0, flow[idx[0], 0] * 1.03)
            signal[idx[0][hit], idx[1][hit]] = vessel_signal[hit]
        image = base_image.copy()
        image[near] = signal.mean(axis=-1) * texture[near]
        # the vessel trees near the heart too, wherever the heart does not cover them at this phase
        image[near] += tree_signal[near] * (~inside).mean(axis=-1)
        if bands is not None:
            image *= bands
        image = _ringing(image, protocol.ringing)
        if protocol.psf_mm > 0:
            image = gaussian_filter(image, psf_px, truncate=3.0)
        if protocol.ghost > 0:
            # the heart moves between phase encodings: faint copies of it along the phase-encoded rows
            moving = np.where(near, image, 0.0)
            strength = protocol.ghost * (1 + np.sin(phase) ** 2)
            image = image + strength * (np.roll(moving, ghost_shift, axis=0) + np.roll(moving, -ghost_shift, axis=0))
        truth = np.zeros((rows, cols), np.uint8)
        truth[in_truth] = heart.labels(centre_truth, float(s))
        labels[f] = truth
        noisy = image * bias
        n1 = _phase_correlated(rng.normal(0.0, 1.0, noisy.shape), protocol.ringing) * noise_sigma
        n2 = _phase_correlated(rng.normal(0.0, 1.0, noisy.shape), protocol.ringing) * noise_sigma
        images[f] = np.sqrt((noisy + n1) ** 2 + n2**2)
    return images, labels


VESSEL_PHASE_STEPS = 5     # the great vessels are imaged at contraction 0, 0.2, ..., 1
HEART_LOW_SD = 0.05        # smooth variation of the heart muscle's signal
BODY_LOW_SD = 0.06         # smooth variation of every body tissue's signal
BODY_FINE_SD = {body.LIVER: 0.07, body.MUSCLE: 0.08, body.DIAPHRAGM: 0.08, body.SUBCUT_FAT: 0.05, body.MED_FAT: 0.06,
                body.ABDOMINAL_FAT: 0.06,
                body.SPLEEN: 0.05, body.SPINE: 0.12, body.SOFT_TISSUE: 0.06, body.STOMACH: 0.10,
                body.CARTILAGE: 0.06, body.LUNG: 0.15}
LUNG_DEPENDENT_GAIN = 0.4  # the lung's signal is this much higher at the back (and lower at the front)
TREE_BLUR_MM = 1.0         # how far (SD) the vessel trees' signal is smeared by their motion
FAT_SEPTA_DEPTH = 0.25     # how dark the thin fibrous septa in fat are


def _tissue_fields(rng: np.random.Generator, shape: tuple[int, int], spacing_mm: np.ndarray) -> dict:
    """Zero-mean unit-SD random fields of one image: low (25 mm), fine (1 mm), septa and vessels (4 mm), flow (10 mm)."""
    return {"low": smooth_field(rng, shape, 25.0 / spacing_mm), "fine": smooth_field(rng, shape, 0.9 / spacing_mm),
            "septa": smooth_field(rng, shape, 3.5 / spacing_mm), "vessel": smooth_field(rng, shape, 2.5 / spacing_mm),
            "patch": smooth_field(rng, shape, 6.0 / spacing_mm), "flow_a": smooth_field(rng, shape, 10.0 / spacing_mm),
            "flow_b": smooth_field(rng, shape, 10.0 / spacing_mm)}


def _textured_body(table: dict, labels: np.ndarray, fields: dict) -> np.ndarray:
    """Body signal at each sub-sample (rows, cols, n_sub): each tissue's value with its own texture.

    Smooth variation everywhere, fine texture in solid tissue, and thin dark septa in fat.
    """
    signal = _lookup(table, labels)
    low, fine = fields["low"][..., None], fields["fine"][..., None]
    signal *= 1 + BODY_LOW_SD * low + _lookup(BODY_FINE_SD, labels) * fine
    fat = np.isin(labels, (body.SUBCUT_FAT, body.MED_FAT, body.ABDOMINAL_FAT))
    septa = np.exp(-((fields["septa"][..., None] / 0.12) ** 2))
    signal[fat] *= np.broadcast_to(1 - FAT_SEPTA_DEPTH * septa, labels.shape)[fat]
    return signal


def _phase_kernel(strength: float) -> np.ndarray:
    """The point-spread along the phase-encoded rows of a reconstruction that keeps ``1 - strength`` of
    k-space (a windowed sinc; unit sum)."""
    n = np.arange(-RINGING_TAPS, RINGING_TAPS + 1)
    keep = 1.0 - strength  # fraction of k-space kept
    kernel = keep * np.sinc(keep * n) * np.cos(0.5 * np.pi * n / (RINGING_TAPS + 1))
    return kernel / kernel.sum()


def _ringing(image: np.ndarray, strength: float) -> np.ndarray:
    """Truncation (Gibbs) ringing and slight blur along the phase-encoded rows."""
    if strength <= 0:
        return image
    return np.clip(convolve1d(image, _phase_kernel(strength), axis=0, mode="nearest"), 0.0, None)


def _phase_correlated(noise: np.ndarray, strength: float) -> np.ndarray:
    """White noise band-limited along the phase-encoded rows as the image is (:func:`_ringing`): the
    reconstruction fills the k-space it did not sample with zeros, so the noise grain is coarser along
    the rows than across them. Its SD is kept."""
    if strength <= 0:
        return noise
    kernel = _phase_kernel(strength)
    return convolve1d(noise, kernel / np.sqrt(np.sum(kernel**2)), axis=0, mode="wrap")


RINGING_TAPS = 5


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma_px) -> np.ndarray:
    """Smooth Gaussian random field with zero mean and unit SD (tissue texture)."""
    field = gaussian_filter(rng.normal(0.0, 1.0, shape), sigma_px)
    return (field - field.mean()) / max(field.std(), 1e-9)


BAND_WIDTH_RAD = 0.7      # half-width (in off-resonance phase per TR) of a dark SSFP band
BAND_RADIUS_MM = (170.0, 260.0)  # the first band lies this far from the shimmed heart


def off_resonance_bands(points_lps: np.ndarray, heart_centre_lps, rng: np.random.Generator,
                        spacing_mm: np.ndarray, depth: float) -> np.ndarray:
    """Signal factor (rows, cols) with the dark bands of balanced SSFP.

    The field is shimmed on the heart, so the off-resonance phase per TR grows
    quadratically away from it (the first band lies a random distance away) and is
    bent, more with distance, by a smooth random field (air and tissue interfaces); the
    signal drops where the phase crosses an odd multiple of pi, never at the heart.
    """
    r2 = np.sum((np.asarray(points_lps, float) - np.asarray(heart_centre_lps, float)) ** 2, axis=-1)
    radius = rng.uniform(*BAND_RADIUS_MM)
    shape = r2.shape
    quadratic = r2 / radius**2
    phase = np.pi * quadratic + 1.5 * np.minimum(quadratic, 1.0) * smooth_field(rng, shape, 40.0 / np.asarray(spacing_mm))
    wrapped = np.mod(phase, 2 * np.pi) - np.pi  # 0 on a band
    return (1.0 - depth * np.exp(-((wrapped / BAND_WIDTH_RAD) ** 2))).astype(np.float32)


def _vessel_tree_signal(tree: VesselTree, labels: np.ndarray, points_lps: np.ndarray, table: dict,
                        spacing_mm: np.ndarray) -> np.ndarray:
    """A vessel tree's signal above that of the tissue it runs through (rows, cols), the mean over each
    pixel's sub-samples smeared by :data:`TREE_BLUR_MM`: the vessels pulse and move with the heart and
    the breath.

    Parameters
    ----------
    tree : VesselTree
    labels : (rows, cols, n_sub) uint8 array
        Body labels at the sub-samples ``points_lps`` (rows, cols, n_sub, 3).
    table : dict
        The protocol's body signals; the tree's territory names the vessels' own.
    """
    vessel = tree.mask(labels, points_lps)
    excess = np.where(vessel, np.float32(table[tree.territory.signal]) - _lookup(table, labels), 0.0)
    return gaussian_filter(excess.mean(axis=-1).astype(np.float32), TREE_BLUR_MM / spacing_mm)


def _lung_vessels(rng: np.random.Generator, lung: np.ndarray, spacing_mm: np.ndarray, fields: dict) -> np.ndarray:
    """Pulmonary vessels: small bright blurred dots (vessels across the plane) and short branching
    strands (vessels along it, the zero crossings of a smooth field, in patches) over the lungs."""
    dots = (rng.random(lung.shape) < 0.004 * float(np.prod(spacing_mm))) & lung
    strands = lung & (np.abs(fields["vessel"]) < LUNG_STRAND_WIDTH) & (fields["patch"] > LUNG_STRAND_PATCH)
    blurred = gaussian_filter(dots.astype(np.float32) + 0.6 * strands, 1.0 / spacing_mm)
    return 0.22 * blurred / max(float(blurred.max()), 1e-9)


LUNG_STRAND_WIDTH = 0.07   # field band that makes a strand (about 1 mm wide)
LUNG_STRAND_PATCH = 0.3    # strands lie where this smooth field is higher (about a third of the lung)


def _lookup(table: dict, labels: np.ndarray) -> np.ndarray:
    """``table[label]`` at every label (float32); labels the table does not list give 0."""
    lut = np.zeros(max(max(table), int(labels.max(initial=0))) + 1, np.float32)
    for k, value in table.items():
        lut[k] = value
    return lut[labels]
