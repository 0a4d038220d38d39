"""The static chest around the heart, in the patient frame (LPS, mm).

The body outline is rounder in front and flatter behind, with a slightly irregular
contour; under the skin lies a subcutaneous fat layer of uneven thickness, then the
chest wall muscles (pectorals in front, the thick paraspinal muscles either side of
the spine behind) with the ribs in them (costal cartilage in front). Inside the
thoracic cavity are the two lungs either side of the mediastinum (the heart, which
lies against the chest wall, and the anterior mediastinal fat beside its front and behind
the sternum, and a pad of pericardial fat where the heart's apex nears the chest wall), the vertebral
body with the spinal canal behind it, and the descending
aorta beside the spine. Below the dome-shaped diaphragm (a sheet of muscle on which
the heart rests) lie the liver (right, with its left lobe across the midline), the stomach
(left, its gas in front above a flat gas-fluid level, as the subject lies supine, a rounded
bubble inside its wall), the spleen (left, posterior) and, round them, loops of bowel in
visceral fat. The thoracic spine curves
(kyphosis); its vertebral bodies are waisted, their edges rounded, with domed intervertebral discs between
them, and each level's neural arch and spinous process lie behind the canal. The arms
lie beside the chest (fat, muscle and the humerus), so that the body fills most of a
cine field of view. Women's breasts lie on the front of the chest, over the heart (fat
round glandular tissue in irregular lobes), flattened as the subject lies supine under
the anterior coil. Each body then has its own shape (:class:`BodyShape`):
smooth random 3-D fields bend and dent the trunk away from the heart, make the fat and the
muscle of the chest wall thicker and thinner from place to place, raise and lower the
diaphragm's domes away from the heart, widen and narrow each half of the mediastinum, bulge
its edges with the fat's lobules and move the back of its fat deeper or shallower.
The chest does not move with the cardiac cycle; breath-hold misregistration moves it with
the heart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates, minimum_filter

(AIR, SOFT_TISSUE, SUBCUT_FAT, LUNG, LIVER, SPINE, AORTA, MUSCLE, CSF, RIB, STOMACH, SPLEEN, MED_FAT,
 GAS, STERNUM, DISC, MARROW, DIAPHRAGM, CARTILAGE, PULMONARY_VESSEL, HEPATIC_VESSEL, RIB_MARROW,
 ABDOMINAL_FAT) = range(23)
BODY_LABELS = {"air": AIR, "soft_tissue": SOFT_TISSUE, "subcut_fat": SUBCUT_FAT, "lung": LUNG, "liver": LIVER,
               "spine": SPINE, "aorta": AORTA, "muscle": MUSCLE, "csf": CSF, "rib": RIB,
               "stomach": STOMACH, "spleen": SPLEEN, "mediastinal_fat": MED_FAT, "gas": GAS, "sternum": STERNUM,
               "disc": DISC, "marrow": MARROW, "diaphragm": DIAPHRAGM, "costal_cartilage": CARTILAGE,
               "pulmonary_vessel": PULMONARY_VESSEL, "hepatic_vessel": HEPATIC_VESSEL, "rib_marrow": RIB_MARROW,
               "abdominal_fat": ABDOMINAL_FAT}
"""The body's tissues; :data:`PULMONARY_VESSEL` and :data:`HEPATIC_VESSEL` name the signals of the
lungs' and the liver's vessels (:mod:`cmrpipe.synth.trees`), which :meth:`Chest.labels` never returns."""

# the back is flatter: its outline is a superellipse of exponent 3 (the front is elliptic)
RIB_PITCH_MM = 24.0          # head-foot distance between ribs
RIB_SLOPE = 0.45             # ribs run down from back to front: z shift per mm of y
RIB_UNEVENNESS = 0.3         # how much the ribs' spacing wanders (fraction of the pitch)
RIB_SIZE_VARIATION = 0.2     # and their size, from rib to rib and along each
COSTAL_CARTILAGE_COS = 0.55  # nearer the front than this (|cos| of the angle from the side), a rib is cartilage
RIB_HALF_SIZE_MM = (7.0, 5.0)  # a rib's half-height (head-foot) and half-thickness
RIB_DEPTH_MM = 5.0           # its middle lies this far outside the chest wall's inner surface
RIB_MARROW_FRACTION = 0.7    # a rib's marrow fills this fraction of its section's radii (the rest is cortex)
STOMACH_CENTRE_Y, STOMACH_HALF_DEPTH = -0.1, 0.42  # the stomach's centre and half-depth (fractions of the chest's)
STOMACH_WALL_MM = 6.0        # the gas keeps this far from the liver
GASTRIC_WALL_MM = 3.0        # and this far below the diaphragm's muscle (the stomach's wall)
GAS_X, GAS_HALF_WIDTH = 0.58, 0.11  # the gas bubble's centre and half-width, left of the midline (fractions of
GAS_HALF_HEIGHT_MM = 16.0           # the chest's half-width), and its half-height
GAS_LEVEL = 0.3              # its gas lies in front of this fraction of its half-depth ahead of its centre
STOMACH_HALF_HEIGHT_MM = 70.0  # the stomach's and the spleen's half-heights; their centres lie this less 10 mm
SPLEEN_HALF_HEIGHT_MM = 55.0   # under the diaphragm's muscle, which cuts their tops
VERTEBRA_RADIUS_MM = 17.0
CANAL_RADIUS_MM = 7.5
DESCENDING_AORTA_RADIUS_MM = 11.0
DOME_HEIGHT_MM = 34.0        # rise of each hemidiaphragm above its rim
DIAPHRAGM_MM = 4.0           # thickness of the diaphragm's muscle
VERTEBRA_PITCH_MM = 28.0     # head-foot distance between intervertebral discs
DISC_FRACTION = 0.22         # fraction of the pitch taken by a disc, at its rim
DISC_DOMING = 0.4            # and this fraction more in its middle (the end plates are concave)
END_PLATE_MM = 1.0           # an end plate's cortex, between a disc and a vertebral body's marrow
VERTEBRA_RIM_MM = 4.0        # a vertebral body's edges are rounded (a quarter circle of this radius) at each end plate
VERTEBRA_WAIST = 0.08        # a vertebral body is this much narrower half way between its end plates
KYPHOSIS_MM = 8.0            # the spine lies this much further forwards 120 mm above or below the heart
ARCH_MM = 5.0                # the neural arch round the spinal canal: its thickness
ARCH_FRACTION = 0.7          # behind the canal the arch of one level fills this fraction of the pitch
SPINOUS_SLOPE = 0.8          # the laminae and the spinous process run down, this much per mm back
SPINOUS_LENGTH_MM, SPINOUS_HALF_WIDTH_MM = 28.0, 4.0
BONE_CORTEX_MM = 1.2         # the arch's and the spinous process's cortex
ARM_GAP_MM = 12.0            # between the chest wall and the arm
ARM_HALF_WIDTH_MM, ARM_HALF_DEPTH_MM = 46.0, 54.0
ARM_FAT_MM = 9.0             # mean subcutaneous fat of the arm
HUMERUS_RADIUS_MM, HUMERUS_CORTEX_MM = 12.0, 3.5
HUMERUS_OFFSET_MM = (8.0, 6.0)  # the humerus lies this far from the arm's centre towards the chest and the front
ARM_OUTLINE_GAIN = 2.0       # the arms' outlines are this much more uneven than the chest's
ARM_FAT_UNEVENNESS = 1.5     # and their fat layers than the chest's
ARM_SIDE_PHASE = 2.1         # the right arm's harmonics are turned this far (rad) from the left's
ARM_SEPTA_RAD = (0.3, 3.0)   # where the intermuscular septa leave the humerus (0: away from the chest, pi/2: back)
ARM_SEPTUM_CURVE = 0.5       # and how far (rad) they turn on their way out, per arm half-width
ARM_SEPTUM_MM = 1.5
CHEST_MUSCLE_MM = 12.0       # the chest wall's muscle (serratus, latissimus, intercostals) at the sides
PECTORAL_MM = 12.0           # and the pectorals' extra thickness in front
FAT_LATERAL_GAIN = 0.8       # flanks carry more fat than the front and back
FAT_BACK_THINNING = 0.4      # the fat over the middle of the back is this much thinner
STERNUM_HALF_MM = (14.0, 6.0)  # the sternum's half-width and half-thickness
STERNUM_FAT = 0.55           # the fat over the sternum is this fraction of that beside it, thinning where the
STERNUM_FAT_EDGES = (0.7, 0.9)  # outline's angle from the patient's left has a sine from -0.7 to -0.9 (about 45 to 26
                                # degrees either side of the front)
BARREL = 0.04                # the trunk's outline shrinks by this fraction 120 mm above or below the heart
BREAST_X = 0.5               # a breast's centre lies this fraction of the half-width from the midline
BREAST_RADII_MM = (95.0, 75.0)  # a breast's footprint on the chest: across, head-foot
BREAST_BELOW_HEART_MM = 25.0  # its centre lies this far below the heart's centre
BED_FULL_MM = 25.0           # the diaphragm rises to the heart where the heart lies up to this far above it,
BED_REACH_MM = 45.0          # less far up to this (and not at all further)
BED_MARGIN_MM = 3.5          # and stays this much lower than the heart's least clearance over it
BED_SMOOTH_MM = 6.0          # the lift is smoothed over about this (SD)
BED_PAD_CELLS = 4            # cells round the heart's footprint, where the smoothed lift fades
# each body's own shape (:class:`BodyShape`): smooth random 3-D fields, consistent between planes
SHAPE_WAVES = 6              # plane waves in each field
BROAD_WARP_MM, BROAD_WAVELENGTH_MM = 5.0, (150.0, 350.0)  # the trunk bent out of its oval (SD per axis)
NEAR_WARP_MM, NEAR_WAVELENGTH_MM = 1.0, (50.0, 100.0)      # and gently dented
FAT_FIELD_SD, FAT_WAVELENGTH_MM = 0.25, (80.0, 200.0)       # the fat layer's thickness, relative SD
MUSCLE_FIELD_SD, MUSCLE_WAVELENGTH_MM = 0.2, (80.0, 200.0)  # and the chest-wall muscle's
MEDIASTINUM_WANDER, MEDIASTINUM_WAVELENGTH_MM = 0.35, (30.0, 90.0)  # its right and left halves' widths (SD)
FAT_BACK_WANDER_MM, FAT_BACK_WAVELENGTH_MM = 8.0, (25.0, 70.0)  # the back of the anterior mediastinal fat (SD)
LOBULES_MM, LOBULES_WAVELENGTH_MM = 2.0, (20.0, 50.0)  # and the mediastinum's edges bulge with its lobules (SD)
APEX_FAT_MM = 7.0           # the pericardial fat pad at the apex: its radius_mm (a typical heart's fat),
APEX_FAT_BULGE = 1.3        # a lens this many radii across in its middle,
APEX_FAT_OVERLAP = 0.6      # reaching this many radii past the apex and the wall (which hide it),
APEX_FAT_LOBE_MM = 3.0      # its outline lobulated by up to about this,
APEX_FAT_REACH_MM = 12.0    # where the wall lies at most this far from the apex (further: lung, and no pad)
VISCERAL_FAT_LEVEL = 0.0  # the upper abdomen's bowel loops are where a sum of three sines exceeds this: about half fat
MEDIASTINUM_FLOOR = 0.3      # each half of the mediastinum keeps at least this fraction of the model's width
DOME_WANDER_MM, DOME_WAVELENGTH_MM = 8.0, (60.0, 150.0)  # the diaphragm's height, away from the heart (SD)
GLAND_SD, GLAND_WAVELENGTH_MM, GLAND_WAVES = 1.5, (12.0, 35.0), 24  # the breasts' finer glandular lobes (in
                                                                    # units of their coarse lobules' sines)
FAT_FIELD_FLOOR, MUSCLE_FIELD_FLOOR = 0.3, 0.4               # never thinner than these fractions of the model's
WARP_STILL_MM, WARP_FULL_MM = 75.0, 140.0  # the warp grows from nothing this far from the heart's centre to
                                            # its full size this far (so that the diaphragm under the heart,
                                            # whose bed is moulded to it, moves little)


@dataclass(frozen=True)
class Undulation:
    """A smooth random field in 3-D: a sum of plane waves of random direction, wavelength and phase.

    ``amplitudes`` is ``(n,)`` for a scalar field or ``(n, 3)`` for a vector field (each wave then
    moves points along its own direction). The same field is seen by every plane cut through it.
    """

    wavevectors: np.ndarray  # (n, 3), rad/mm
    phases: np.ndarray       # (n,)
    amplitudes: np.ndarray   # (n,) or (n, 3)

    @classmethod
    def random(cls, rng: np.random.Generator, sd: float, wavelength_mm: tuple[float, float],
               n: int = SHAPE_WAVES, vector: bool = False) -> "Undulation":
        """A field of ``n`` waves with wavelengths uniform in ``wavelength_mm`` and SD ``sd`` (per axis
        for a vector field)."""
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        wavevectors = direction * (2 * np.pi / rng.uniform(*wavelength_mm, n))[:, None]
        phases = rng.uniform(0.0, 2 * np.pi, n)
        # a wave of amplitude a has variance a^2 / 2: n of them sum to sd^2
        size = sd * np.sqrt(2.0 / n)
        amplitudes = rng.normal(0.0, size, (n, 3)) if vector else np.full(n, size) * rng.choice((-1.0, 1.0), n)
        return cls(wavevectors.astype(np.float32), phases.astype(np.float32), amplitudes.astype(np.float32))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """The field at ``points`` (..., 3): shape (...) or (..., 3)."""
        p = np.asarray(points, np.float32)
        waves = np.sin(p.reshape(-1, 3) @ self.wavevectors.T + self.phases)
        out = waves @ self.amplitudes
        return out.reshape(p.shape[:-1] + self.amplitudes.shape[1:])


@dataclass(frozen=True)
class BodyShape:
    """What makes one body unlike the model's smooth one: the trunk bent and dented (a warp that grows
    with distance from ``still_lps`` and leaves the heart's surroundings as they are; ``still_lps`` is
    the heart's centre where ``cohort.seat_heart`` has seated it in the smooth model's body, and seating
    it again in this body moves it by at most a few mm), the fat layer and the chest-wall muscle
    thicker and thinner from place to place, the domes of the diaphragm higher and lower away from the
    heart, the mediastinum's edges (with the lungs) wandering and bulging, and the back of its fat, round
    the heart, lying deeper or shallower from place to place."""

    still_lps: tuple[float, float, float]
    broad: Undulation
    near: Undulation
    fat: Undulation
    muscle: Undulation
    mediastinum: Undulation
    domes: Undulation
    gland: Undulation
    fat_back: Undulation
    lobules: Undulation

    @classmethod
    def random(cls, rng: np.random.Generator, still_lps) -> "BodyShape":
        """One body's shape, still round ``still_lps`` (LPS mm: the heart's centre, seated)."""
        return cls(tuple(float(v) for v in still_lps),
                   Undulation.random(rng, BROAD_WARP_MM, BROAD_WAVELENGTH_MM, vector=True),
                   Undulation.random(rng, NEAR_WARP_MM, NEAR_WAVELENGTH_MM, vector=True),
                   Undulation.random(rng, FAT_FIELD_SD, FAT_WAVELENGTH_MM),
                   Undulation.random(rng, MUSCLE_FIELD_SD, MUSCLE_WAVELENGTH_MM),
                   Undulation.random(rng, MEDIASTINUM_WANDER, MEDIASTINUM_WAVELENGTH_MM, vector=True),
                   Undulation.random(rng, DOME_WANDER_MM, DOME_WAVELENGTH_MM),
                   Undulation.random(rng, GLAND_SD, GLAND_WAVELENGTH_MM, n=GLAND_WAVES),
                   Undulation.random(rng, FAT_BACK_WANDER_MM, FAT_BACK_WAVELENGTH_MM),
                   Undulation.random(rng, LOBULES_MM, LOBULES_WAVELENGTH_MM))

    def grow(self, points: np.ndarray) -> np.ndarray:
        """How much of the warp applies at each point (..., 3): 0 round the heart, rising smoothly to 1."""
        distance = np.linalg.norm(points - np.asarray(self.still_lps, np.float32), axis=-1)
        grow = np.clip((distance - WARP_STILL_MM) / (WARP_FULL_MM - WARP_STILL_MM), 0.0, 1.0)
        return grow * grow * (3.0 - 2.0 * grow)

    def unwarp(self, points: np.ndarray, grow: np.ndarray) -> np.ndarray:
        """Where each point of this body (``points`` float32, (..., 3), with :meth:`grow` there) lies in
        the smooth model's body."""
        return points - grow[..., None] * (self.broad(points) + self.near(points))


@dataclass(frozen=True)
class ApexFatPad:
    """The pericardial fat pad at the heart's apex, where the apex meets the chest wall: a lobulated lens of
    fat from the apex (``apex_lps``, the outside of its epicardial fat) along ``direction_lps`` (unit) to the
    nearest chest wall, ``length_mm`` away, :data:`APEX_FAT_BULGE` times ``radius_mm`` across in its middle
    and reaching past both ends (into the heart and the wall, which hide it): its sides are convex and
    lobulated, as a pad's are against the lung, neither a rod nor a cone. It takes the place of lung only
    (the heart is drawn over it, the wall and the diaphragm stop it)."""

    apex_lps: tuple[float, float, float]
    direction_lps: tuple[float, float, float]
    length_mm: float
    radius_mm: float

    def holds(self, points: np.ndarray, bulge_mm: np.ndarray | float = 0.0) -> np.ndarray:
        """Whether each point (..., 3) lies in the pad, its outline moved out by ``bulge_mm`` and by its
        own lobules (:data:`APEX_FAT_LOBE_MM`, 13-21 mm across)."""
        p = np.asarray(points, np.float32)
        d = p - np.asarray(self.apex_lps, np.float32)
        n = np.asarray(self.direction_lps, np.float32)
        half = 0.5 * self.length_mm
        axial = d @ n
        along = axial - half  # from the lens's middle
        across = np.linalg.norm(d - axial[..., None] * n, axis=-1)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        lobes = APEX_FAT_LOBE_MM / 3.0 * _wavy_sines(x, y, z, (2.3, 3.1, 2.7, 2.9, 2.1, 3.3), (1.7, 1.3, 1.1))
        width = APEX_FAT_BULGE * self.radius_mm + bulge_mm + lobes
        reach = half + APEX_FAT_OVERLAP * self.radius_mm
        return (along / reach) ** 2 + (across / np.maximum(width, 1.0)) ** 2 <= 1.0


@dataclass(frozen=True)
class Chest:
    """Sizes and positions of the chest's parts (mm, LPS); ``heart_centre_lps`` is the heart's centre
    (the coils, the breasts and the trunk's widest part are placed by it).

    ``outline_amp`` and ``outline_phase`` (harmonics 2-4 of the body outline, fractions of its
    radius) and ``fat_amp``/``fat_phase`` (harmonics 1-3 of the subcutaneous fat thickness)
    make the body irregular; zero gives a smooth outline and an even fat layer.
    ``breast_mm`` is how far each breast rises from the chest wall (0: none).
    ``bed_lift_mm`` (a grid of ``bed_step_mm`` cells in x and y, its first cell's centre at
    ``bed_origin_mm``) raises the diaphragm under the heart, which rests on it and moulds it
    (None: the domes alone). ``shape`` (:class:`BodyShape`) bends the body out of the model's
    smooth form and makes its fat and muscle uneven in 3-D (None: the smooth model). ``apex_fat``
    (:class:`ApexFatPad`) is the pericardial fat between the heart's apex and the chest wall (None: none).
    """

    half_width_mm: float
    half_depth_mm: float
    fat_mm: float
    diaphragm_z_mm: float
    heart_centre_lps: tuple[float, float, float]
    outline_amp: tuple[float, ...] = (0.0, 0.0, 0.0)
    outline_phase: tuple[float, ...] = (0.0, 0.0, 0.0)
    fat_amp: tuple[float, ...] = (0.0, 0.0, 0.0)
    fat_phase: tuple[float, ...] = (0.0, 0.0, 0.0)
    breast_mm: float = 0.0
    bed_origin_mm: tuple[float, float] = (0.0, 0.0)
    bed_step_mm: float = 4.0
    bed_lift_mm: np.ndarray | None = field(default=None, compare=False)
    shape: BodyShape | None = field(default=None, compare=False)
    apex_fat: ApexFatPad | None = None

    @classmethod
    def irregularity(cls, rng: np.random.Generator) -> dict:
        """Random outline and fat-thickness harmonics (keyword arguments of the constructor)."""
        return {"outline_amp": tuple(float(a) for a in rng.normal(0.0, 0.04, 3) / np.arange(1, 4)),
                "outline_phase": tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 3)),
                "fat_amp": tuple(float(a) for a in rng.normal(0.0, 0.4, 3)),
                "fat_phase": tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 3))}

    @staticmethod
    def breast_height_mm(sex: str, bmi: float, rng: np.random.Generator) -> float:
        """How far a subject's breasts rise from the chest wall, supine (mm): 0 for men; for women
        about 30 mm, more with body mass index."""
        height = rng.normal(30.0, 10.0) + 1.2 * (bmi - 27.0)
        return float(np.clip(height, 8.0, 70.0)) if sex == "F" else 0.0

    def labels(self, points_lps: np.ndarray) -> np.ndarray:
        """Body label at each point.

        Parameters
        ----------
        points_lps : (..., 3) float array
            Patient coordinates, mm.

        Returns
        -------
        (...) uint8 array
        """
        p = np.asarray(points_lps, np.float32)
        if self.shape is not None:
            grow = self.shape.grow(p)
            p = self.shape.unwarp(p, grow)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        # the trunk's outline is widest at the heart and narrows above and below it (a barrel, not a
        # cylinder); the organs inside keep their places (``width``, ``depth``)
        width, depth = self.half_width_mm, self.half_depth_mm
        barrel = np.float32(1.0) - BARREL * ((z - np.float32(self.heart_centre_lps[2])) / np.float32(120.0)) ** 2
        barrel = np.clip(barrel, 0.9, None)
        outline_width, outline_depth = width * barrel, depth * barrel
        rho = np.hypot(x / outline_width, y / outline_depth)
        safe = np.maximum(rho, 1e-6)
        cos_t, sin_t = x / outline_width / safe, y / outline_depth / safe   # sin_t > 0: posterior
        wobble = 1.0 + _harmonics(cos_t, sin_t, self.outline_amp, self.outline_phase, first=2)
        # distance-like coordinate: 1 on the skin, 0 at the centre, flatter behind
        ay = np.abs(y) / outline_depth
        level = np.sqrt((x / outline_width) ** 2 + np.where(y > 0, ay * ay * ay, ay * ay)) / wobble
        to_mm = np.hypot(outline_width * cos_t, outline_depth * sin_t)  # the radius this way: depth below the skin

        fat = self.fat_mm * np.clip(1.0 + FAT_LATERAL_GAIN * cos_t**2
                                    + _harmonics(cos_t, sin_t, self.fat_amp, self.fat_phase), 0.3, None)
        # thin over the sternum, thickening smoothly towards the flanks (a step here was a step in the fat and in the
        # pleura down the whole chest)
        over = np.clip((-sin_t - STERNUM_FAT_EDGES[0]) / (STERNUM_FAT_EDGES[1] - STERNUM_FAT_EDGES[0]), 0.0, 1.0)
        fat = fat * (1.0 - (1.0 - STERNUM_FAT) * over * over * (3.0 - 2.0 * over))
        fat = fat * (1.0 - FAT_BACK_THINNING * np.clip(sin_t, 0.0, 1.0) ** 2)
        posterior = np.exp(-((cos_t / 0.42) ** 2)) * (sin_t > 0)
        pectoral = np.exp(-(((np.abs(cos_t) - 0.55) / 0.25) ** 2)) * (sin_t < 0)
        muscle = CHEST_MUSCLE_MM + 32.0 * posterior + PECTORAL_MM * pectoral
        if self.shape is not None:
            # thicker or thinner fat and muscle move the skin out or in: the ribcage, and the pleura inside it,
            # keep their smooth curve
            more = (fat * np.clip(self.shape.fat(p), FAT_FIELD_FLOOR - 1.0, None),
                    muscle * np.clip(self.shape.muscle(p), MUSCLE_FIELD_FLOOR - 1.0, None))
            fat, muscle = fat + more[0], muscle + more[1]
            level = level - (more[0] + more[1]) / np.maximum(to_mm, 1.0)  # (to_mm is 0 on the body's axis)
        below_skin_mm = (1.0 - level) * to_mm

        out = np.zeros(x.shape, np.uint8)
        out[level <= 1.0] = SUBCUT_FAT
        wall = (level <= 1.0) & (below_skin_mm > fat)
        out[wall] = MUSCLE
        cavity = (level <= 1.0) & (below_skin_mm > fat + muscle)
        out[cavity] = SOFT_TISSUE
        # ribs: oblique hoops in the inner part of the chest wall, oval in section, their size and spacing a
        # little uneven: a dark cortex round grey (red, part fatty) marrow
        rib_zone = wall & ~cavity & (np.abs(cos_t) > 0.25)
        turns = ((z + RIB_SLOPE * y + 4.0 * np.sin(x / 37.0)) / RIB_PITCH_MM
                 + RIB_UNEVENNESS * np.sin(x / 53.0 + z / 71.0))
        along_mm = (turns - np.round(turns)) * RIB_PITCH_MM      # from the nearest rib's middle line
        across_mm = below_skin_mm - (fat + muscle - RIB_DEPTH_MM)  # from its middle, into the chest
        size = 1.0 + RIB_SIZE_VARIATION * np.sin(x / 41.0 + 2.0 * np.round(turns))  # each rib its own size
        rib = np.hypot(along_mm / RIB_HALF_SIZE_MM[0], across_mm / RIB_HALF_SIZE_MM[1]) / size
        bone = rib_zone & (rib <= 1.0)
        # in front the ribs continue as costal cartilage, about as grey as the muscle round it
        cartilage = np.abs(cos_t) < COSTAL_CARTILAGE_COS
        out[bone & cartilage] = CARTILAGE
        out[bone & ~cartilage] = RIB
        out[bone & ~cartilage & (rib <= RIB_MARROW_FRACTION)] = RIB_MARROW

        dome = self.diaphragm_z(x, y)
        if self.shape is not None:
            # the domes rise and fall a little from place to place away from the heart's bed
            dome = dome + grow * self.shape.domes(p)
        above = z > dome
        out[cavity & ~above & (z > dome - DIAPHRAGM_MM)] = DIAPHRAGM
        # the thoracic spine's curve (kyphosis) brings it forwards above and below the heart
        spine_y = (depth - 32.0 - VERTEBRA_RADIUS_MM - 0.25 * depth
                   - KYPHOSIS_MM * ((z - np.float32(self.heart_centre_lps[2])) / np.float32(120.0)) ** 2)
        # the mediastinum: a band down the middle from the sternum to the spine, wider behind and narrowing in
        # front of the heart to where the two lungs nearly meet behind the sternum (a wedge of fat there with
        # curved sides, not a straight bar or a triangle); the lungs either side of it (only the thorax's points,
        # all soft tissue so far, are looked at)
        thorax = cavity & above
        xt, yt, zt = x[thorax], y[thorax], z[thorax]
        front = np.clip((-0.45 * depth - yt) / (0.45 * depth), 0.0, 1.0)
        half_width = (20.0 + 12.0 * np.clip((yt + 0.2 * depth) / depth, 0.0, 1.0)
                      - 14.0 * front * front * (3.0 - 2.0 * front)
                      + 5.0 * np.cos(yt / 17.0 + zt / 31.0))
        across = xt - mediastinum_middle_x(zt)
        pt = p[thorax]
        if self.shape is not None:
            # its two edges wander, each its own way (no plane cuts them straight)
            wander = self.shape.mediastinum(pt)
            half_width = half_width * np.clip(1.0 + np.where(across > 0, wander[..., 0], wander[..., 1]),
                                              MEDIASTINUM_FLOOR, None)
            # and bulge in and out with the fat's lobules (neither edge a straight line in any plane)
            half_width = half_width + self.shape.lobules(pt)
        inside = np.flatnonzero(np.abs(across) < half_width)
        thorax_labels = np.full(len(xt), LUNG, np.uint8)
        thorax_labels[inside] = SOFT_TISSUE
        # its fat fills the front of the mediastinum, beside and in front of the heart (drawn over the body, the heart
        # overlaps the band's left edge) and of the great vessels, back to about the heart's middle: no plane bounds it
        fat_back = np.float32(self.heart_centre_lps[1])
        if self.shape is not None:
            fat_back = fat_back + self.shape.fat_back(pt[inside])
        thorax_labels[inside[yt[inside] < fat_back]] = MED_FAT
        if self.apex_fat is not None:
            # the pericardial fat pad between the apex and the chest wall, its outline bulging with lobules
            lung = np.flatnonzero(thorax_labels == LUNG)
            bulge = self.shape.lobules(pt[lung]) if self.shape is not None else 0.0
            thorax_labels[lung[self.apex_fat.holds(pt[lung], bulge)]] = MED_FAT
        out[thorax] = thorax_labels
        # the abdomen below the diaphragm's muscle
        below = cavity & (z <= dome - DIAPHRAGM_MM)
        # the liver fills the right and reaches furthest left in front (its left lobe), behind one curved
        # edge that wanders in and out (no straight cut, no corner)
        liver_edge = (0.1 * width + 0.3 * width * np.exp(-(((y + 0.45 * depth) / (0.4 * depth)) ** 2))
                      + 12.0 * np.sin(y / 29.0 + z / 41.0) + 5.0 * np.sin(y / 11.0 - z / 17.0 + 1.3))
        liver = below & (x < liver_edge)
        out[liver] = LIVER
        # the stomach and the spleen are rounded bags hanging under the diaphragm (not columns: an oblique
        # plane cuts them in curves)
        under_mm = dome - DIAPHRAGM_MM - z  # how far below the diaphragm's muscle
        sq = (((x - 0.42 * width) / (0.28 * width)) ** 2
              + ((y - STOMACH_CENTRE_Y * depth) / (STOMACH_HALF_DEPTH * depth)) ** 2
              + ((under_mm - STOMACH_HALF_HEIGHT_MM + 10.0) / STOMACH_HALF_HEIGHT_MM) ** 2)
        stomach = below & ~liver & (sq <= 1.0)
        out[stomach] = STOMACH
        # supine, the stomach's gas rises to its front: a rounded bubble in the stomach's top, clear of the liver
        # and under the stomach's wall, above a flat (coronal) gas-fluid level (a dome on a flat floor: no
        # corners, and no straight side along the liver, which the stomach's wall and contents lie against)
        bubble = (((x - GAS_X * width) / (GAS_HALF_WIDTH * width)) ** 2
                  + ((y - (STOMACH_CENTRE_Y - 0.5 * STOMACH_HALF_DEPTH) * depth) / (0.3 * depth)) ** 2
                  + ((under_mm - GASTRIC_WALL_MM - GAS_HALF_HEIGHT_MM) / GAS_HALF_HEIGHT_MM) ** 2)
        gas_fluid_y = STOMACH_CENTRE_Y * depth - GAS_LEVEL * STOMACH_HALF_DEPTH * depth
        gas = (bubble <= 1.0) & (y < gas_fluid_y) & (x > liver_edge + STOMACH_WALL_MM)
        out[stomach & gas] = GAS
        ssp = (((x - 0.55 * width) / (0.2 * width)) ** 2 + ((y - 0.45 * depth) / (0.3 * depth)) ** 2
               + ((under_mm - SPLEEN_HALF_HEIGHT_MM + 10.0) / SPLEEN_HALF_HEIGHT_MM) ** 2)
        out[below & ~liver & ~stomach & (ssp <= 1.0)] = SPLEEN
        # the rest of the upper abdomen is bowel in fat: rounded loops of soft tissue (a sum of three wavy
        # sines, a few cm across, laid from the heart's centre so that each subject's lie differently) with the
        # visceral fat between them
        rest = below & (out == SOFT_TISSUE)
        xr, yr, zr = (c[rest] - np.float32(h) for c, h in zip((x, y, z), self.heart_centre_lps))
        loops = _wavy_sines(xr, yr, zr, (7.0, 15.0, 8.0, 13.0, 9.0, 17.0), (1.7, 1.3, 1.5))
        out[rest] = np.where(loops < VISCERAL_FAT_LEVEL, ABDOMINAL_FAT, SOFT_TISSUE)

        # bones: sternum in front, the vertebral body (marrow, cortex) and the canal behind
        # (in the wall's muscle layer under the fat over it, its back flush with the wall's inner surface beside it)
        inward_mm = below_skin_mm - fat - muscle + STERNUM_HALF_MM[1]
        sternum = (y < 0) & (((x / STERNUM_HALF_MM[0]) ** 2 + (inward_mm / STERNUM_HALF_MM[1]) ** 2) <= 1.0)
        out[sternum & (level <= 1.0)] = STERNUM
        self._spine(out, x, y, z, spine_y)
        # descending aorta: left-anterior of the vertebral body
        ao = np.hypot(x - 29.0, y - spine_y + 10.0) <= DESCENDING_AORTA_RADIUS_MM
        out[ao & (z > self.diaphragm_z_mm - 60.0)] = AORTA
        if self.breast_mm > 0:
            self._breasts(out, x, y, z, (level - 1.0) * to_mm)
        self._arms(out, x, y, level)
        return out

    @staticmethod
    def _spine(out: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray, spine_y: np.ndarray) -> None:
        """Write the vertebral column (its middle line at ``x`` = 0, ``y`` = ``spine_y``) into ``out`` in place.

        Each vertebral body is marrow in a dark cortex, waisted between its end plates and rounded at its
        edges there (:data:`VERTEBRA_RIM_MM`); the discs between
        them bulge a little and are thickest in the middle (the end plates are concave, each a thin dark
        line). Behind the body the neural arch rings the spinal canal, and the spinous process runs back
        and down from it, each level's apart from the next (the intervertebral foramina beside the canal,
        the spaces between the laminae behind it).
        """
        dv = np.hypot(x, y - spine_y)
        level = z / VERTEBRA_PITCH_MM
        from_disc_mm = np.abs(level - np.round(level)) * VERTEBRA_PITCH_MM  # head-foot, from the nearest disc
        disc_half_mm = 0.5 * DISC_FRACTION * VERTEBRA_PITCH_MM * (
            1.0 + DISC_DOMING * np.clip(1.0 - (dv / VERTEBRA_RADIUS_MM) ** 2, 0.0, 1.0))
        waist = 1.0 - VERTEBRA_WAIST * np.sin(np.pi * from_disc_mm / VERTEBRA_PITCH_MM)  # narrowest half way
        # its edges rounded where it meets the discs (a quarter circle from the disc's rim), not square corners
        into_body_mm = np.clip(from_disc_mm - 0.5 * DISC_FRACTION * VERTEBRA_PITCH_MM, 0.0, VERTEBRA_RIM_MM)
        rounding = VERTEBRA_RIM_MM - np.sqrt(VERTEBRA_RIM_MM**2 - (VERTEBRA_RIM_MM - into_body_mm) ** 2)
        radius = VERTEBRA_RADIUS_MM * waist - rounding
        out[dv <= radius + 1.5] = RIB
        out[(dv <= radius) & (from_disc_mm > disc_half_mm + END_PLATE_MM)] = SPINE
        out[(dv <= VERTEBRA_RADIUS_MM + 1.5) & (from_disc_mm <= disc_half_mm)] = DISC
        canal_y = spine_y + VERTEBRA_RADIUS_MM + CANAL_RADIUS_MM + 2.0
        dc = np.hypot(x, y - canal_y)
        # each level's arch (its pedicles, the laminae behind the canal) and spinous process, sloping down
        # behind the canal: apart from the next level's
        behind_mm = np.clip(y - canal_y, 0.0, None)
        tilt = (z + SPINOUS_SLOPE * behind_mm) / VERTEBRA_PITCH_MM
        phase = tilt - np.floor(tilt)
        # (how far inside this level's bone, head-foot: its cortex runs round it at the gaps too)
        from_gap_mm = VERTEBRA_PITCH_MM * np.where(phase < ARCH_FRACTION, np.minimum(phase, ARCH_FRACTION - phase),
                                                   -1.0)
        # (a bone's cortex is ``BONE_CORTEX_MM`` of its edge, dark round its marrow)
        from_arch_mm = 0.5 * ARCH_MM - np.abs(dc - CANAL_RADIUS_MM - 0.5 * ARCH_MM)  # > 0 inside the arch
        tip_mm = CANAL_RADIUS_MM + SPINOUS_LENGTH_MM
        from_spinous_mm = np.where(behind_mm > CANAL_RADIUS_MM,
                                   np.minimum(SPINOUS_HALF_WIDTH_MM * (1.0 - 0.5 * behind_mm / tip_mm) - np.abs(x),
                                              tip_mm - behind_mm), -1.0)
        # (the arch meets the vertebral body's cortex, and leaves the body as it is)
        inside = np.where(dv > radius + 1.5, np.minimum(np.maximum(from_arch_mm, from_spinous_mm), from_gap_mm), -1.0)
        out[inside >= 0.0] = RIB
        out[inside >= BONE_CORTEX_MM] = RIB_MARROW
        out[dc <= CANAL_RADIUS_MM] = CSF

    def front_wall_y_mm(self, x: np.ndarray, z: np.ndarray, step_mm: float = 1.0) -> np.ndarray:
        """Where the anterior chest wall begins (its inner surface, LPS y in mm) at each ``(x, z)``.

        Found by walking forwards from just in front of the spine until the first point of chest-wall
        tissue (muscle, rib or costal cartilage, sternum or fat); NaN where there is none.
        """
        x, z = np.broadcast_arrays(np.asarray(x, float), np.asarray(z, float))
        y = np.arange(-0.2 * self.half_depth_mm, -1.3 * self.half_depth_mm - 60.0, -step_mm)
        line = np.stack(np.broadcast_arrays(x[..., None], y, z[..., None]), -1)
        wall = np.isin(self.labels(line), (MUSCLE, RIB, RIB_MARROW, CARTILAGE, STERNUM, SUBCUT_FAT))
        first = np.argmax(wall, axis=-1)
        return np.where(wall.any(axis=-1), y[first], np.nan)

    def _breasts(self, out: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 outside_mm: np.ndarray) -> None:
        """Write the breasts (mounds in front of the chest, ``outside_mm`` beyond its skin) into ``out`` in place.

        Each is a mound of fat up to ``breast_mm`` high over an elliptical footprint, flattening out
        towards its edge (no step where it meets the chest); its central part holds glandular tissue
        (soft tissue) in irregular lobes broken up by fat, thinning out towards the edge (no solid block).
        """
        front = (y < 0) & (outside_mm > 0)
        rx, rz = BREAST_RADII_MM
        bz = self.heart_centre_lps[2] - BREAST_BELOW_HEART_MM
        lobules = np.sin(x / 7.0 + z / 11.0) + np.sin(y / 5.0 - x / 13.0) + np.sin(z / 6.0 + y / 9.0)
        if self.shape is not None:
            # and finer lobes of the body's own, no lattice
            lobules = lobules + np.where(front, self.shape.gland(np.stack([x, y, z], axis=-1)), 0.0)
        for side in (-1.0, 1.0):
            q = ((x - side * BREAST_X * self.half_width_mm) / rx) ** 2 + ((z - bz) / rz) ** 2
            height = self.breast_mm * np.clip(1.0 - q, 0.0, None) ** 1.5
            breast = front & (outside_mm <= height)
            out[breast] = SUBCUT_FAT
            core = q / 0.4 + ((outside_mm / self.breast_mm - 0.35) / 0.3) ** 2 + 0.3 * lobules
            out[breast & (core < 1.0)] = SOFT_TISSUE

    def _arms(self, out: np.ndarray, x: np.ndarray, y: np.ndarray, level: np.ndarray) -> None:
        """Write the two arms (beside the chest, outside its outline) into ``out`` in place.

        Each has an uneven outline and fat layer, its muscle split into a front and a back
        compartment by the thin, curving medial and lateral intermuscular septa (fat), and the
        humerus off-centre, nearer the chest and the front.
        """
        reach = self.half_width_mm + ARM_GAP_MM
        outside = (np.abs(x) > reach) & (level > 1.0)
        if not outside.any():
            return
        side = np.sign(x[outside])  # +1 left, -1 right
        ax = np.abs(x[outside]) - reach - ARM_HALF_WIDTH_MM
        ay = y[outside] - 0.15 * self.half_depth_mm
        r = np.hypot(ax / ARM_HALF_WIDTH_MM, ay / ARM_HALF_DEPTH_MM)
        safe = np.maximum(r, 1e-6)
        cos_t, sin_t = ax / ARM_HALF_WIDTH_MM / safe, ay / ARM_HALF_DEPTH_MM / safe
        # each arm its own uneven outline and fat layer (the right arm's harmonics turned from the left's)
        wobble, uneven = (np.where(side > 0, _harmonics(cos_t, sin_t, amp, phase, first),
                                   _harmonics(cos_t, sin_t, amp, np.add(phase, ARM_SIDE_PHASE), first))
                          for amp, phase, first in ((self.outline_amp, self.outline_phase, 2),
                                                    (self.fat_amp[::-1], self.fat_phase, 1)))
        r = r / (1.0 + ARM_OUTLINE_GAIN * wobble)
        below_skin_mm = (1.0 - r) * ARM_HALF_WIDTH_MM
        fat = ARM_FAT_MM * np.clip(1.0 + ARM_FAT_UNEVENNESS * uneven, 0.3, None)
        lab = np.zeros(ax.shape, np.uint8)
        lab[r <= 1.0] = SUBCUT_FAT
        muscle = (r <= 1.0) & (below_skin_mm > fat)
        lab[muscle] = MUSCLE
        bx, by = ax + HUMERUS_OFFSET_MM[0], ay + HUMERUS_OFFSET_MM[1]
        bone = np.hypot(bx, by)
        # the medial and lateral intermuscular septa: thin sheets curving from the bone to the skin between the
        # front (flexor) and back (extensor) compartments
        angle = np.arctan2(by, bx)
        for septum in ARM_SEPTA_RAD:
            turn = angle - septum - ARM_SEPTUM_CURVE * bone / ARM_HALF_WIDTH_MM
            lab[muscle & (np.abs(bone * np.sin(turn)) < 0.5 * ARM_SEPTUM_MM) & (np.cos(turn) > 0)] = SUBCUT_FAT
        lab[bone <= HUMERUS_RADIUS_MM] = RIB
        lab[bone <= HUMERUS_RADIUS_MM - HUMERUS_CORTEX_MM] = MARROW
        out[outside] = lab

    def diaphragm_z(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height of the diaphragm's upper surface (mm): two domes, the right one higher, lowest at the rim,
        raised where the heart lies on it (:attr:`bed_lift_mm`)."""
        width, depth = self.half_width_mm, self.half_depth_mm
        right = 6.0 + DOME_HEIGHT_MM * (1 - ((x + 0.4 * width) / (0.55 * width)) ** 2 - (y / (0.95 * depth)) ** 2)
        # the left dome peaks under the heart, which rests on it
        left = DOME_HEIGHT_MM * (1 - ((x - 0.35 * width) / (0.55 * width)) ** 2 - ((y + 0.25 * depth) / (0.95 * depth)) ** 2)
        dome = self.diaphragm_z_mm - DOME_HEIGHT_MM + 10.0 + _smooth_max(_smooth_max(right, left, 12.0), -40.0, 12.0)
        if self.bed_lift_mm is None:
            return dome
        x, y = np.broadcast_arrays(x, y)
        cells = [(np.ravel(c) - o) / self.bed_step_mm for c, o in zip((x, y), self.bed_origin_mm)]
        lift = map_coordinates(self.bed_lift_mm, cells, order=1, mode="constant", cval=0.0)
        return dome + lift.reshape(x.shape).astype(dome.dtype)

    def with_heart_bed(self, points_lps: np.ndarray, clearance_mm: float) -> "Chest":
        """This chest with the diaphragm raised under the heart, as the heart lying on it moulds it.

        Under each ``bed_step_mm`` column of the heart's points, the diaphragm rises to
        ``clearance_mm`` + :data:`BED_MARGIN_MM` below the heart's underside where that lies
        less than :data:`BED_FULL_MM` above the domes, less far up to :data:`BED_REACH_MM`
        and not at all higher; the lift is smoothed (:data:`BED_SMOOTH_MM`) and never
        brings the diaphragm closer to the heart than that.

        Parameters
        ----------
        points_lps : (n, 3) float array
            Points inside the heart (at ED), LPS mm.
        clearance_mm : float
            The heart's underside's least height above the domes.
        """
        step = self.bed_step_mm
        points = np.asarray(points_lps, float)
        cell = np.round(points[:, :2] / step).astype(int)
        first = cell.min(axis=0) - BED_PAD_CELLS
        shape = tuple(cell.max(axis=0) - first + 1 + BED_PAD_CELLS)
        bottom = np.full(shape, np.inf)
        np.minimum.at(bottom, tuple((cell - first).T), points[:, 2])
        origin = tuple(float(v) for v in first * step)
        bx, by = np.meshgrid(origin[0] + step * np.arange(shape[0]), origin[1] + step * np.arange(shape[1]),
                             indexing="ij")
        dome = dataclasses.replace(self, bed_lift_mm=None).diaphragm_z(bx, by)
        gap = np.clip(bottom - dome - clearance_mm - BED_MARGIN_MM, 0.0, None)
        held = np.isfinite(gap)
        gap = np.where(held, gap, 0.0)
        lift = gap * np.clip((BED_REACH_MM - gap) / (BED_REACH_MM - BED_FULL_MM), 0.0, 1.0)
        # never above the heart anywhere between the cells either, nor on the steep flanks the sampling misses:
        # capped by the lowest underside within two cells
        ceiling = np.clip(minimum_filter(bottom, size=3, mode="constant", cval=np.inf) - dome - clearance_mm
                          - BED_MARGIN_MM, 0.0, None)
        lift = np.minimum(gaussian_filter(lift, BED_SMOOTH_MM / step), ceiling)
        return dataclasses.replace(self, bed_origin_mm=origin, bed_lift_mm=lift.astype(np.float32))


def mediastinum_middle_x(z: np.ndarray) -> np.ndarray:
    """The middle of the smooth model's mediastinum (x, mm, LPS) at height ``z``: a little left of the
    midline, swaying gently head-foot."""
    return 8.0 + 6.0 * np.sin(z / 23.0)


def _wavy_sines(x: np.ndarray, y: np.ndarray, z: np.ndarray, scales_mm: tuple[float, ...],
                bends: tuple[float, float, float]) -> np.ndarray:
    """``sin(x / a + k1 sin(y / b)) + sin(y / c + k2 sin(z / d)) + sin(z / e + k3 sin(x / f))`` for
    ``scales_mm`` (a..f) and ``bends`` (k1..k3): three sines, each along one axis and bent by a sine along
    the next, whose sum (-3 to 3) makes rounded, irregular blobs about 2 pi scales across, with no straight
    edge in any plane."""
    a, b, c, d, e, f = scales_mm
    return (np.sin(x / a + bends[0] * np.sin(y / b)) + np.sin(y / c + bends[1] * np.sin(z / d))
            + np.sin(z / e + bends[2] * np.sin(x / f)))


def _smooth_max(a: np.ndarray, b, softness: float) -> np.ndarray:
    """``max(a, b)`` with the crease rounded over about ``softness`` (the same units)."""
    return 0.5 * (a + b + np.sqrt((a - b) ** 2 + softness**2))


def _harmonics(cos_t: np.ndarray, sin_t: np.ndarray, amp, phase, first: int = 1) -> np.ndarray:
    """``sum_k amp_k cos(k theta + phase_k)`` for ``k = first, first + 1, ...`` (by recurrence)."""
    out = np.zeros(np.shape(cos_t), np.float32)
    ck, sk = cos_t, sin_t
    for _ in range(first - 1):
        ck, sk = ck * cos_t - sk * sin_t, sk * cos_t + ck * sin_t
    for a, ph in zip(amp, phase):
        out += np.float32(a) * (ck * np.float32(np.cos(ph)) - sk * np.float32(np.sin(ph)))
        ck, sk = ck * cos_t - sk * sin_t, sk * cos_t + ck * sin_t
    return out
