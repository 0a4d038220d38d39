"""The analytic heart of a synthetic subject, in its own frame, at any phase of the cycle.

Heart frame (``_hrt``, mm): ``w`` runs along the LV long axis from the epicardial
apex (``w = 0``, fixed through the cycle) to the base; ``u`` points from the LV
axis towards the right ventricle (septal direction); ``v = w x u``.

The LV is a truncated prolate ellipsoidal shell: at depth ``xi`` below the base
(0 at the base, 1 at the apex) and angle ``theta`` about the long axis the
endocardial radius is ``a * sqrt(1 - xi**2) * (1 + delta(theta, xi)) * taper(xi)``;
the epicardium likewise with its own semi-axes. ``delta`` is a smooth random
perturbation (circumferential harmonics whose amplitude varies with depth) that a
low-order shape model cannot represent exactly, and the endocardium's is drawn in across
the septum, so that the septum is thicker than the free wall; the taper narrows both surfaces
towards the base, so the ventricle is widest about a third of the way down and the
mitral annulus narrower than the cavity below it. Volumes follow in closed form up
to one quadrature: ``V = a**2 * c * J(delta)`` with ``J = pi/3 * 2`` for no
perturbation and no taper (a half ellipsoid).

From end-diastole (ED, ``s = 0``) to end-systole (ES, ``s = 1``) the endocardium
contracts radially and longitudinally, the epicardial apex stays put so the base
descends, and the epicardial radius is solved so that the myocardial volume is
the same at every phase (so ED and ES mass agree).

The right ventricle is a crescent wrapped round the septal side of the LV epicardium:
outside the epicardium, between the two insertion points (:data:`RV_HALF_ANGLE` either side
of ``u``), it reaches out by a thickness that falls to nothing at
the insertion points (where the RV insertion points lie), its free wall an elliptical arc longer
along the septum than it is deep (:func:`rv_profile`), and that is greatest just under the
tricuspid annulus and narrows to the RV apex (the triangle of a four-chamber view). The
tricuspid annulus lies :data:`TRICUSPID_OFFSET_MM` apical of the mitral annulus (the base),
and the RV apex short of the LV apex (:data:`RV_LENGTH`); its free wall moves towards the
septum in systole and thickens (:data:`RV_WALL_THICKENING`). The atria are ellipsoids over
the annuli (:meth:`HeartShape.atria`), made irregular by a few low-order bumps of their own
(:meth:`HeartShape.atrium_radius`); the endocardial rim at the base is the mitral annulus.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq

# tissue labels of the synthetic anatomy (label maps use these codes)
BACKGROUND, LV_CAVITY, LV_MYO, RV_CAVITY, RV_WALL, LA_CAVITY, EPI_FAT, PAPILLARY, RA_CAVITY = range(9)
HEART_LABELS = {"lv_cavity": LV_CAVITY, "lv_myo": LV_MYO, "rv_cavity": RV_CAVITY, "rv_wall": RV_WALL,
                "la_cavity": LA_CAVITY, "epi_fat": EPI_FAT, "papillary": PAPILLARY, "ra_cavity": RA_CAVITY}
LV_BLOOD_POOL = (LV_CAVITY, PAPILLARY)
"""Labels inside the endocardial surface: papillary muscles count as blood pool (cavity
volume) and not as myocardium (mass), as in the UK Biobank reference contours."""

LA_LENGTH, RA_LENGTH = 0.32, 0.34  # long semi-axes of the atria, fractions of the LV's endocardial one
ATRIUM_OFFSET = 0.45  # an atrium's centre lies this many of its long semi-axes above the base
ATRIAL_FILLING = 0.12  # the atria grow by this fraction from ED to ES
ATRIAL_BUMP_SD = 0.07  # SD of each of the atria's eight harmonic bumps (fractions of their radius)
ATRIAL_BUMP_MAX = 0.25  # and their sum at most this
ATRIAL_BUMP_FLOOR = 0.3  # no bumps where the direction from an atrium's centre points down more than this (its
                         # floor on the annulus), full ones where it points up more than 0.6 less this
GROOVE_FAT_MM = 5.0  # reach of the fat in the interventricular and atrioventricular grooves
AV_GROOVE_MM = 9.0   # height of the atrioventricular groove's fat above the base
PAPILLARY_ANGLES = (np.pi - 0.75, np.pi + 1.1)  # from u: anterolateral (shown at ~2 o'clock), posteromedial (~6)
# their variation from heart to heart, SDs (each draw within two of them):
PAPILLARY_ANGLE_SD = 0.15  # a muscle's place about the axis (radians from the place above)
PAPILLARY_SIZE_SD = 0.12   # its radius (fraction of the heart's papillary_mm)
PAPILLARY_TOP_SD = 0.04    # the depth of its tip (fraction of the endocardial long axis)
PAPILLARY_BIFID = 0.4      # the share of hearts whose posteromedial muscle has two heads ...
PAPILLARY_BIFID_APART = 0.22  # ... each this far (radians) to one side of the muscle's place (2x this apart)
PAPILLARY_BIFID_SIZE = 0.72   # ... each this fraction of a single muscle's radius
PAPILLARY_TOP = 0.22  # the tip of a papillary muscle, fraction of the endocardial long axis below the base
PAPILLARY_FREE_TO = 0.55  # down to this depth (same fraction) a papillary muscle stands out from the wall
PAPILLARY_SINK = 0.2  # ... and over this much further it sinks into the wall (gone by twice this)
PAPILLARY_EMBED_MM = 1.5  # how far its section reaches into the wall (its base on the wall is wide)
PAPILLARY_CLEFT_MM = 3.5  # ... less this at its tip, less in proportion further down, at ED (none at ES)
PAPILLARY_TIP = 0.55  # a papillary muscle's radius at its tip, fraction of that where it meets the wall
PAPILLARY_THICKENING = 0.25  # a papillary muscle's radius grows by this fraction from ED to ES
PAPILLARY_MAX_SHARE = 0.35  # a papillary muscle's radius is at most this share of the cavity's there
PAPILLARY_ELONGATION = 1.1  # a papillary muscle's section: this times longer towards the wall than across it
PAPILLARY_LUMPS = 0.12      # relative amplitude of the irregularity of its outline
RV_LENGTH = 0.88  # the RV apex lies this fraction of the LV's epicardial long axis below the base (short of its apex)
RV_THICKNESS = 0.9  # the RV's reach outside the LV epicardium on u (at the annulus), in LV epicardial radii
RV_HALF_ANGLE = np.radians(65.0)  # the RV insertion points lie this far either side of u, about the LV axis
RV_FULLNESS = 1.2  # the crescent's reach falls from the tricuspid annulus to the RV apex as (1 - z) (1 + RV_FULLNESS z)
RV_SPAN = 1.55  # the free wall is an elliptical arc through the insertion points whose semi-axis across u (along
               # the septum) is this many LV epicardial radii: a half-moon longer than it is deep, not a second circle
RV_SKEW = 0.45  # the crescent is this much fuller towards the front (v) and thinner towards the back
RV_RADIAL_SHORTENING = 0.15  # the free wall's systolic movement towards the septum, fraction of the reach
RV_WALL_MM = 3.0  # the RV's free wall at ED
RV_WALL_THICKENING = 0.4  # the RV's free wall thickens by this fraction from ED to ES
RV_FAT_MM = 6.5  # fat over the RV free wall, in the middle of its patches (typical heart)
APICAL_FAT_MM = 4.0  # the fat cap over the LV apex (typical heart)
LV_FAT_MM = 3.5  # the fat patches over the LV, at the base (typical heart)
LV_FAT_DEPTH = 0.45  # ... thinning to none at this depth below the base (fraction of the long axis)
TRICUSPID_OFFSET_MM = 8.0  # the tricuspid annulus lies this far apical of the mitral annulus (the base)
RA_U = 1.25  # the right atrium's centre lies this many LV epicardial radii along u
_N_THETA, _N_XI = 256, 200  # quadrature for volumes (relative error < 1e-5)


@dataclass(frozen=True)
class Perturbation:
    """Smooth radial perturbation ``delta(theta, xi) = sum_k amp_k (1 + slope_k xi) cos(k theta + phase_k)
    - septal * septum_weight(theta) + ellipse * cos(2 (theta - ellipse_angle))``.

    ``k`` runs from 1; amplitudes are fractions of the radius. ``septal`` draws the surface in
    towards the axis across the septum, by that fraction of the radius in its middle (``theta``
    0) and less towards the RV insertion points (:func:`septum_weight`): the endocardium's makes
    the septum thicker and flatter than the free wall. ``ellipse`` makes the sections oval, their long
    axis at ``ellipse_angle`` (radians from ``u``), the same at every depth: given to both surfaces
    alike, it shapes the ventricle, not its wall. ``basal_taper`` narrows the surface
    towards the base, and ``power`` and ``tip`` set its profile from the base to the apex (see
    :meth:`radius_factor`).
    """

    amp: tuple[float, ...] = ()
    slope: tuple[float, ...] = ()
    phase: tuple[float, ...] = ()
    basal_taper: float = 0.0
    power: float = 2.0
    septal: float = 0.0
    ellipse: float = 0.0
    ellipse_angle: float = 0.0
    tip: float | None = None

    def radius_factor(self, cos_t: np.ndarray, sin_t: np.ndarray, xi: np.ndarray) -> np.ndarray:
        """The surface's radius over its radial semi-axis ``a`` at angle ``theta`` and depth ``xi``.

        The profile ``(1 - xi**power)**tip`` (``tip`` None stands for ``1 / power``: with ``power`` 2 an
        ellipsoid; above 2 a fuller "bullet", with a blunter apex; a ``tip`` above ``1 / power``
        narrows the lower part towards a more pointed apex) times ``1 + delta`` times the basal taper
        ``1 - basal_taper * max(0, 1 - xi / TAPER_DEPTH)**2``, which narrows the surface towards
        the base (the mitral annulus is narrower than the ventricle below it).
        """
        xi = np.asarray(xi)
        profile = (1 - xi**self.power) ** (1.0 / self.power if self.tip is None else self.tip)
        return profile * (1 + self.at(cos_t, sin_t, xi)) * taper(xi, self.basal_taper)

    def __call__(self, theta: np.ndarray, xi: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, float)
        return self.at(np.cos(theta), np.sin(theta), xi)

    def at(self, cos_t: np.ndarray, sin_t: np.ndarray, xi: np.ndarray) -> np.ndarray:
        """``delta`` from the cosine and sine of ``theta`` (harmonics by recurrence, no trigonometry)."""
        cos_t, sin_t, xi = np.asarray(cos_t), np.asarray(sin_t), np.asarray(xi)
        out = np.zeros(np.broadcast_shapes(cos_t.shape, xi.shape), dtype=np.result_type(cos_t, float))
        ck, sk = cos_t, sin_t
        for a, b, p in zip(self.amp, self.slope, self.phase):
            out += (a * (1.0 + b * xi)) * (ck * np.cos(p) - sk * np.sin(p))
            ck, sk = ck * cos_t - sk * sin_t, sk * cos_t + ck * sin_t
        if self.septal:
            out -= self.septal * septum_weight(cos_t)
        if self.ellipse:
            a = 2.0 * self.ellipse_angle
            out += self.ellipse * ((cos_t * cos_t - sin_t * sin_t) * np.cos(a) + 2.0 * sin_t * cos_t * np.sin(a))
        return out

    @classmethod
    def random(cls, rng: np.random.Generator, n_harmonics: int = 4, scale: float = 0.04) -> "Perturbation":
        """Harmonics 1..n with amplitudes ~ scale / k, random depth slopes and phases."""
        k = np.arange(1, n_harmonics + 1)
        return cls(tuple(rng.normal(0.0, scale / k)), tuple(rng.uniform(-0.8, 0.8, n_harmonics)),
                   tuple(rng.uniform(0.0, 2 * np.pi, n_harmonics)))

    def shape_integral(self) -> float:
        """``J = 1/2 int_0^1 int_0^2pi radius_factor^2 dtheta dxi`` (2 pi / 3 for a half ellipsoid)."""
        return _shape_integral(self)


def septum_weight(cos_t: np.ndarray) -> np.ndarray:
    """1 in the middle of the septum (``theta`` 0), falling smoothly (a smoothstep in ``cos theta``, flat
    in the middle) to 0 at the RV insertion points (:data:`RV_HALF_ANGLE` either side) and beyond."""
    x = np.clip((np.asarray(cos_t) - np.cos(RV_HALF_ANGLE)) / (1.0 - np.cos(RV_HALF_ANGLE)), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


TAPER_DEPTH = 0.35  # the basal taper fades out at this depth below the base (fraction of the long axis)


def taper(xi: np.ndarray, amount: float) -> np.ndarray:
    """``1 - amount * max(0, 1 - xi / TAPER_DEPTH)**2``: 1 - amount at the base, 1 from TAPER_DEPTH down."""
    return 1.0 - amount * np.clip(1.0 - np.asarray(xi) / TAPER_DEPTH, 0.0, None) ** 2


@functools.lru_cache(maxsize=4096)
def _shape_integral(delta: Perturbation) -> float:
    theta = (np.arange(_N_THETA) + 0.5) * 2 * np.pi / _N_THETA
    xi = (np.arange(_N_XI) + 0.5) / _N_XI
    t, x = np.meshgrid(theta, xi)
    integrand = 0.5 * delta.radius_factor(np.cos(t), np.sin(t), x) ** 2
    return float(integrand.mean() * 2 * np.pi)


@dataclass(frozen=True)
class HeartShape:
    """The ED geometry of one heart and how it moves (lengths in mm, fractions 0-1).

    Parameters
    ----------
    a_endo_mm, c_endo_mm : float
        ED endocardial radial and longitudinal semi-axes.
    wall_mm, apex_wall_mm : float
        ED wall thickness at the equator of the base and at the apex.
    radial_shortening, long_shortening : float
        Fractional shortening of the endocardial semi-axes at ES.
    epi_long_shortening : float
        Fractional shortening of the epicardial long axis at ES (base descent).
    endo_delta, epi_delta : Perturbation
        Shape perturbations of the two surfaces.
    rv_scale : float
        Size of the RV relative to the LV epicardium.
    papillary_mm : float
        Radius of a papillary muscle's section at ED, across the wall (each muscle's is this times its
        size in ``papillaries``; they thicken in systole).
    papillaries : tuple
        ``((angle, size, top), ...)``, one per muscle or head (:func:`random_papillaries`): its place
        about the axis (radians from ``u``), its radius as a fraction of ``papillary_mm`` and the depth
        of its tip (fraction of the endocardial long axis below the base). When empty, the two muscles
        lie at :data:`PAPILLARY_ANGLES`, of size 1 and tip :data:`PAPILLARY_TOP`.
    fat_scale : float
        How much epicardial fat the heart carries, relative to the typical (it grows with
        age, body mass index and in men).
    atrial_bumps : tuple
        ``(("la", coefficients), ("ra", coefficients))`` (:func:`random_atrial_bumps`): the atria's
        irregularity (:meth:`atrium_radius`); smooth ellipsoids when empty.
    """

    a_endo_mm: float
    c_endo_mm: float
    wall_mm: float
    apex_wall_mm: float
    radial_shortening: float
    long_shortening: float
    epi_long_shortening: float
    endo_delta: Perturbation = field(default_factory=Perturbation)
    epi_delta: Perturbation = field(default_factory=Perturbation)
    rv_scale: float = 1.0
    papillary_mm: float = 4.0
    papillaries: tuple = ()
    fat_scale: float = 1.0
    atrial_bumps: tuple = ()

    # ---- the LV surfaces at a phase -------------------------------------------------

    def surfaces(self, s: float) -> dict[str, float]:
        """Semi-axes at contraction ``s`` (0 = ED, 1 = ES), with myocardial volume conserved.

        Returns
        -------
        dict
            ``a_endo_mm``, ``c_endo_mm``, ``a_epi_mm``, ``c_epi_mm`` and ``base_w_mm`` (the base
            plane's height above the epicardial apex).
        """
        a_en = self.a_endo_mm * (1 - s * self.radial_shortening)
        c_en = self.c_endo_mm * (1 - s * self.long_shortening)
        c_ep0 = self.c_endo_mm + self.apex_wall_mm
        c_ep = c_ep0 * (1 - s * self.epi_long_shortening)
        j_en, j_ep = self.endo_delta.shape_integral(), self.epi_delta.shape_integral()
        a_ep0 = self.a_endo_mm + self.wall_mm
        myo_mm3 = a_ep0**2 * c_ep0 * j_ep - self.a_endo_mm**2 * self.c_endo_mm * j_en
        a_ep = np.sqrt((a_en**2 * c_en * j_en + myo_mm3) / (c_ep * j_ep))
        return {"a_endo_mm": a_en, "c_endo_mm": c_en, "a_epi_mm": float(a_ep), "c_epi_mm": c_ep, "base_w_mm": c_ep}

    def volumes_ml(self, s: float) -> dict[str, float]:
        """Exact LV cavity and myocardial volumes (ml) at contraction ``s``."""
        g = self.surfaces(s)
        cav = g["a_endo_mm"] ** 2 * g["c_endo_mm"] * self.endo_delta.shape_integral()
        epi = g["a_epi_mm"] ** 2 * g["c_epi_mm"] * self.epi_delta.shape_integral()
        return {"lv_cavity_ml": cav / 1000.0, "lv_myo_ml": (epi - cav) / 1000.0}

    # ---- labels at points -------------------------------------------------------------

    def labels(self, points_hrt: np.ndarray, s: float) -> np.ndarray:
        """Tissue label at each point of the heart frame at contraction ``s``.

        Parameters
        ----------
        points_hrt : (..., 3) float array
            Points ``(u, v, w)`` in the heart frame, mm.
        s : float
            Contraction, 0 at ED and 1 at ES.

        Returns
        -------
        (...) uint8 array
            :data:`BACKGROUND` where no heart tissue is.
        """
        p = np.asarray(points_hrt, float)
        shape = p.shape[:-1]
        p = p.reshape(-1, 3)
        g = self.surfaces(s)
        base, rv = g["base_w_mm"], self._rv(g, s)
        atria = self.atria(s)
        out = np.zeros(len(p), np.uint8)
        # only points near the heart need the surfaces
        bumps = 1.0 + ATRIAL_BUMP_MAX  # the atria's bumps reach at most this much beyond their ellipsoids
        reach = max(g["a_epi_mm"] * 1.4 + rv["reach_max"] + rv["wall_mm"],
                    *(abs(c[0]) + bumps * ax[0] for c, ax in atria.values()),
                    *(bumps * ax[1] for _, ax in atria.values())) + 6.0
        top = max(c[2] + bumps * ax[2] for c, ax in atria.values())
        near = ((p[:, 2] > -4.0) & (p[:, 2] < top + 1.0) & (np.abs(p[:, 0]) < reach)
                & (np.abs(p[:, 1]) < reach))
        idx = np.flatnonzero(near)
        u, v, w = p[idx, 0], p[idx, 1], p[idx, 2]
        rho, cos_t, sin_t = polar(u, v)
        lab = np.zeros(len(idx), np.uint8)

        def radius(a, c, delta):
            xi = np.clip((base - w) / c, 0.0, 1.0)
            r = a * delta.radius_factor(cos_t, sin_t, xi)
            return np.where((w <= base) & (w >= base - c), r, -1.0), xi

        r_epi, xi_ep = radius(g["a_epi_mm"], g["c_epi_mm"], self.epi_delta)
        r_endo, _ = radius(g["a_endo_mm"], g["c_endo_mm"], self.endo_delta)

        # epicardial fat outside the LV epicardium: two patches over about a third of the circumference, thickest
        # at the base (along the atrioventricular groove) and gone by LV_FAT_DEPTH, and a cap over the apex; the
        # rest of the epicardium, the lateral wall's middle among it, is bare
        cos2 = cos_t**2 - sin_t**2
        sin2 = 2 * sin_t * cos_t
        patches = np.clip((cos2 * 0.765 - sin2 * 0.644 - 0.4) / 0.6, 0.0, None)  # cos(2 theta + 40 degrees) > 0.4
        # (the apical cap thick on the side towards the RV, none laterally: no even ring, no bull's eye)
        fat_mm = self.fat_scale * (LV_FAT_MM * np.clip(1.0 - xi_ep / LV_FAT_DEPTH, 0.0, None) * patches
                                   + APICAL_FAT_MM * np.clip((xi_ep - 0.8) / 0.2, 0.0, 1.0)
                                   * np.clip(1.2 * (0.5 + 0.5 * cos_t) ** 2 - 0.2, 0.0, None))
        lab[(rho <= r_epi + fat_mm) & (r_epi > 0)] = EPI_FAT

        # right ventricle: a crescent wrapped round the septal side of the LV epicardium, with its wall;
        # only points outside the epicardium, within reach of the crescent's window, can be RV
        rv_gap = rho - r_epi
        rv_fat_mm = RV_FAT_MM * self.fat_scale
        grow = rv["wall_mm"] + max(rv_fat_mm, GROOVE_FAT_MM)
        k = np.flatnonzero((r_epi > 0) & (rv_gap > 0) & (w <= rv["top"] + grow)
                           & (cos_t > np.cos(min(np.pi, rv["half_angle"] + grow / rv["radius"]))))
        cos_k, sin_k, w_k, gap_k = cos_t[k], sin_t[k], w[k], rv_gap[k]
        # fat in patches over the RV free wall (cos 3 theta by recurrence), each thickest in its middle and
        # thinning to nothing at its edges (lenses, not a band of even thickness)
        pattern = (4 * cos_k**3 - 3 * cos_k) * np.cos(w_k / 9.0)
        lens_mm = rv_fat_mm * np.clip(pattern / 0.6, 0.0, 1.0)
        patch = (lens_mm > 0) & (w_k <= rv["top"])
        reach_k = self._rv_reach(rv, cos_k, sin_k, w_k, rv["wall_mm"])
        lab[k[patch & (reach_k > 0) & (gap_k <= reach_k + lens_mm)]] = EPI_FAT
        lab[k[gap_k <= reach_k]] = RV_WALL
        lab[k[gap_k <= self._rv_reach(rv, cos_k, sin_k, w_k)]] = RV_CAVITY

        # right atrium above the RV, beside the left atrium; left atrium above the base
        lab[(self.atrium_radius(atria, "ra", u, v, w) <= 1) & (w > rv["top"])] = RA_CAVITY
        lab[(self.atrium_radius(atria, "la", u, v, w) <= 1) & (w > base)] = LA_CAVITY

        # fat fills the grooves: where the RV wall meets the LV (interventricular grooves) and round
        # the base between the ventricle and the atria (atrioventricular groove)
        groove = np.zeros(len(idx), bool)
        near_rv = gap_k <= self._rv_reach(rv, cos_k, sin_k, w_k, rv["wall_mm"] + GROOVE_FAT_MM)
        groove[k[near_rv & (gap_k <= GROOVE_FAT_MM)]] = True
        # a ring of round cross-section about the base's outer edge, outside the annulus (the aortic root
        # rises inside it)
        j = np.flatnonzero((w > base - 3.0) & (w < base + 1.05 * AV_GROOVE_MM))
        cos_j, sin_j = cos_t[j], sin_t[j]
        r_epi_base = self.epicardium_mm(g, cos_j, sin_j, 0.0)
        annulus = self.annulus_mm(g, cos_j, sin_j)
        groove[j[(rho[j] >= annulus)
                 & (np.hypot((rho[j] - r_epi_base) / (GROOVE_FAT_MM + 1.0),
                             (w[j] - base - 0.35 * AV_GROOVE_MM) / (0.7 * AV_GROOVE_MM)) <= 1.0)]] = True
        lab[groove & (lab == BACKGROUND)] = EPI_FAT

        lab[(rho <= r_epi) & (r_epi > 0)] = LV_MYO
        in_cavity = (rho <= r_endo) & (r_endo > 0)
        lab[in_cavity] = LV_CAVITY
        # two papillary muscles on the free wall (the posteromedial of some hearts in two heads side by side,
        # which merge at ES into one broad mound): each a finger of rounded section (lumpy, a little longer
        # towards the wall) along the wall, a knob on it in section (not a wedge), that narrows to a domed
        # tip in the middle of the cavity, where a thin cleft of blood parts it from the wall at ED (its
        # chordae and the trabeculae that tie it are too fine to see), and towards the apex sinks into the
        # wall, a bump that flattens
        c = np.flatnonzero(in_cavity)
        xi_en = np.clip((base - w[c]) / g["c_endo_mm"], 0.0, 1.0)
        sunk = np.clip((xi_en - PAPILLARY_FREE_TO) / PAPILLARY_SINK, 0.0, None)
        muscles = self.papillaries or tuple((angle, 1.0, PAPILLARY_TOP) for angle in PAPILLARY_ANGLES)
        for k, (angle, size, top) in enumerate(muscles):
            head = size * self.papillary_mm * (1 + PAPILLARY_THICKENING * s)
            rising = np.clip((xi_en - top) / (PAPILLARY_FREE_TO - top), 0.0, 1.0)  # 0 at the tip
            tip = PAPILLARY_TIP * head
            below_top = np.clip((xi_en - top) * g["c_endo_mm"], 0.0, None)  # mm below the tip
            dome = np.sqrt(np.clip(below_top * (2.0 * tip - below_top), 0.0, None))
            radius = head * (PAPILLARY_TIP + (1.0 - PAPILLARY_TIP) * rising)
            radius = np.where(below_top < tip, np.minimum(dome, radius), radius)
            cu, cv = np.cos(angle), np.sin(angle)
            wall = self.endocardium_mm(g, cu, cv, xi_en)
            # in a small (systolic) cavity the two muscles lie against the wall and apart, never meeting in its
            # middle
            r_k = np.minimum(radius, PAPILLARY_MAX_SHARE * wall)
            centre = (wall + PAPILLARY_EMBED_MM - PAPILLARY_CLEFT_MM * (1.0 - rising) * (1.0 - s)
                      - PAPILLARY_ELONGATION * r_k * (1.0 - sunk))
            radial = u[c] * cu + v[c] * cv - centre
            across = v[c] * cu - u[c] * cv
            phi = np.arctan2(across, radial)
            lumps = 1.0 + PAPILLARY_LUMPS * np.cos(2.0 * phi + 9.0 * xi_en + 2.0 * k) * np.cos(3.0 * phi - 5.0 * xi_en)
            d2 = (radial / PAPILLARY_ELONGATION) ** 2 + across**2
            lab[c[d2 <= (r_k * lumps) ** 2]] = PAPILLARY
        out[idx] = lab
        return out.reshape(shape)

    def endocardium_mm(self, g: dict, cos_t: np.ndarray, sin_t: np.ndarray, xi) -> np.ndarray:
        """The endocardium's radius (mm) in the direction ``(cos_t, sin_t)`` at depth ``xi`` below the base,
        for the surfaces ``g`` of a phase (:meth:`surfaces`)."""
        return g["a_endo_mm"] * self.endo_delta.radius_factor(cos_t, sin_t, xi)

    def epicardium_mm(self, g: dict, cos_t: np.ndarray, sin_t: np.ndarray, xi) -> np.ndarray:
        """The epicardium's radius (mm) in the direction ``(cos_t, sin_t)`` at depth ``xi`` below the base,
        for the surfaces ``g`` of a phase (:meth:`surfaces`)."""
        return g["a_epi_mm"] * self.epi_delta.radius_factor(cos_t, sin_t, xi)

    def annulus_mm(self, g: dict, cos_t: np.ndarray, sin_t: np.ndarray) -> np.ndarray:
        """The mitral annulus's radius (the endocardium at the base, mm) in the direction ``(cos_t, sin_t)``."""
        return self.endocardium_mm(g, cos_t, sin_t, 0.0)

    def in_rv_cavity(self, points_hrt: np.ndarray, s: float) -> np.ndarray:
        """Whether each point lies in the RV crescent at contraction ``s`` (its label below the tricuspid
        annulus, where no atrium lies), without labelling the rest of the heart."""
        c = self.rv_crescent(points_hrt, s)
        return (c["xi"] >= 0) & (c["xi"] <= 1) & (c["gap_mm"] > 0) & (c["gap_mm"] <= c["reach_mm"])

    def rv_crescent(self, points_hrt: np.ndarray, s: float) -> dict[str, np.ndarray]:
        """Where points lie with respect to the RV crescent at contraction ``s``.

        Returns
        -------
        dict of (...) float arrays
            ``rho``, ``cos_t``, ``sin_t`` (about the LV axis, :func:`polar`); ``xi``, the depth below the
            base in epicardial long axes (not clipped); ``gap_mm``, how far outside the LV epicardium;
            ``reach_mm``, how far the crescent reaches outside it there (0 where there is no RV); and
            ``z``, the fraction of the way from the tricuspid annulus to the RV apex (not clipped).
        """
        p = np.asarray(points_hrt, float)
        u, v, w = p[..., 0], p[..., 1], p[..., 2]
        g = self.surfaces(s)
        rv = self._rv(g, s)
        rho, cos_t, sin_t = polar(u, v)
        xi = (g["base_w_mm"] - w) / g["c_epi_mm"]
        gap = rho - self.epicardium_mm(g, cos_t, sin_t, np.clip(xi, 0.0, 1.0))
        return {"rho": rho, "cos_t": cos_t, "sin_t": sin_t, "xi": xi, "gap_mm": gap,
                "reach_mm": self._rv_reach(rv, cos_t, sin_t, w), "z": (rv["top"] - w) / rv["length"]}

    def atria(self, s: float) -> dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]:
        """The left and right atrial cavities at contraction ``s``: ``{"la": (centre, semi_axes), "ra": ...}``.

        Ellipsoids (heart frame, mm, axes along ``u``, ``v``, ``w``) whose lower parts are cut off by
        the base. The left atrium sits over the mitral annulus: its centre is raised so that where the
        base cuts it, it is no wider than the annulus (which narrows in systole), and it is wider above;
        the right atrium lies beside it, above the RV. They ride on the base as it descends and fill
        while the ventricles contract (larger at ES).
        """
        g = self.surfaces(s)
        a, base = self.a_endo_mm, g["base_w_mm"]
        fill = 1.0 + ATRIAL_FILLING * s
        la_c = LA_LENGTH * self.c_endo_mm * fill
        ra_c = RA_LENGTH * self.c_endo_mm * fill
        la_axes = (0.80 * a * fill, 0.88 * a * fill, la_c)
        annulus = g["a_endo_mm"] * (1.0 - self.endo_delta.basal_taper)
        # the base cuts the ellipsoid where its radius is sqrt(1 - offset**2) of the semi-axis
        offset = max(ATRIUM_OFFSET, float(np.sqrt(1.0 - min(1.0, annulus / la_axes[0]) ** 2)))
        tricuspid = base - TRICUSPID_OFFSET_MM
        return {"la": ((0.0, 0.0, base + offset * la_c), la_axes),
                "ra": ((RA_U * g["a_epi_mm"], 0.0, tricuspid + ATRIUM_OFFSET * ra_c),
                       (0.78 * a * fill, 0.85 * a * fill, ra_c))}

    def atrium_radius(self, atria: dict, name: str, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The scaled radius of points in an atrium (``name`` "la" or "ra" of :meth:`atria` ``atria``): <= 1
        inside. Its ellipsoid with bumps: low-order harmonics of the direction from its centre (an
        atrium is no smooth balloon), none on its lower part, which sits on the annulus. Exact up to
        ``1 + ATRIAL_BUMP_MAX``; further out, some value above that."""
        centre, axes = atria[name]
        r = ellipsoid_radius(u, v, w, centre, axes)
        coefficients = dict(self.atrial_bumps).get(name)
        if coefficients is None:
            return r
        # only points whose radius the bumps can bring to 1 + ATRIAL_BUMP_MAX or less need them (elsewhere both
        # radii are above that)
        near = np.flatnonzero(np.ravel(r) <= (1.0 + ATRIAL_BUMP_MAX) ** 2)
        q = np.column_stack([np.ravel(np.broadcast_to(a, r.shape))[near] for a in (u, v, w)])
        n = (q - np.asarray(centre)) / np.asarray(axes) / np.maximum(np.ravel(r)[near], 1e-9)[:, None]
        x, y, z = n.T
        terms = (x * y, y * z, z * x, x * x - y * y, 3 * z * z - 1, x * (x * x - 3 * y * y), y * (3 * x * x - y * y),
                 x * y * z)
        bump = np.clip(sum(c * term for c, term in zip(coefficients, terms)), -ATRIAL_BUMP_MAX, ATRIAL_BUMP_MAX)
        out = np.array(r, float, copy=True)
        out.ravel()[near] = np.ravel(r)[near] / (1.0 + bump * np.clip((z + ATRIAL_BUMP_FLOOR) / 0.6, 0.0, 1.0))
        return out

    def _rv(self, g: dict, s: float) -> dict[str, float]:
        """The RV crescent at a phase: its thickness outside the LV epicardium on ``u`` (and, ``reach_max``,
        a little more than its greatest reach anywhere), its angular half-width about ``u`` (the insertion
        points lie at +-half_angle), its top (the tricuspid annulus, :data:`TRICUSPID_OFFSET_MM` apical of
        the base) and its length from there to its apex.
        The free wall moves towards the septum in systole and thickens (``wall_mm``, its thickness), and the
        RV shortens less than the LV."""
        top = g["base_w_mm"] - TRICUSPID_OFFSET_MM
        thickness = RV_THICKNESS * g["a_epi_mm"] * self.rv_scale * (1 - RV_RADIAL_SHORTENING * s)
        half_angle = RV_HALF_ANGLE * (1 - 0.08 * s)
        theta = np.radians(np.arange(-90.0, 90.0, 0.25))
        widest = float((rv_profile(np.cos(theta), np.sin(theta), half_angle, RV_THICKNESS, RV_SPAN)
                        * (1.0 + RV_SKEW * np.sin(theta))).max())
        return {"thickness": thickness, "reach_max": 1.02 * widest * thickness, "half_angle": half_angle,
                "radius": g["a_epi_mm"], "top": top, "wall_mm": RV_WALL_MM * (1 + RV_WALL_THICKENING * s),
                "length": RV_LENGTH * g["c_epi_mm"] * (1 - 0.1 * s) - TRICUSPID_OFFSET_MM}

    @staticmethod
    def _rv_reach(rv: dict, cos_t: np.ndarray, sin_t: np.ndarray, w: np.ndarray, grow_mm: float = 0.0) -> np.ndarray:
        """How far (mm) the RV reaches outside the LV epicardium at angle ``theta`` (``cos_t``, ``sin_t``)
        and height ``w``; 0 where there is no RV. ``grow_mm`` enlarges it by that much all round.

        The reach is ``thickness * (1 - z) * (1 + RV_FULLNESS z) * profile(theta)``, ``z`` the fraction of the
        way from the tricuspid annulus to the RV apex (broad at the annulus, narrowing to a point:
        the triangle of the four-chamber view), ``profile`` 1 on ``u`` and 0 at the insertion points,
        fuller towards the front (``v``: the RV lies in front of the LV and tapers to its inferior
        insertion) by :data:`RV_SKEW`. On a circle of the LV epicardium's radius ``profile`` is the
        crescent cut off by an ellipse through the insertion points, reaching ``1 + RV_THICKNESS`` radii
        out on ``u``, with semi-axis :data:`RV_SPAN` radii across it (:func:`rv_profile`).
        """
        z = (rv["top"] - w) / (rv["length"] + grow_mm)
        zc = np.clip(z, 0.0, 1.0)
        along = np.where((z >= -grow_mm / rv["length"]) & (z < 1.0), (1.0 - zc) * (1.0 + RV_FULLNESS * zc), 0.0)
        around = (rv_profile(cos_t, sin_t, rv["half_angle"] + grow_mm / rv["radius"], RV_THICKNESS, RV_SPAN)
                  * (1.0 + RV_SKEW * sin_t))
        shape = along * around
        return np.where(shape > 0, rv["thickness"] * shape + grow_mm, 0.0)

    # ---- landmarks -----------------------------------------------------------------------

    def mitral_hinges_hrt(self, s: float, plane_theta: float, normal_hrt, through_hrt) -> np.ndarray:
        """The two mitral annulus (hinge) points where a long-axis plane cuts the base ring.

        Parameters
        ----------
        s : float
            Contraction.
        plane_theta : float
            Angle (rad, about the long axis, from ``u``) of the side of the ring on which the first
            point lies.
        normal_hrt, through_hrt : (3,) float arrays
            The long-axis plane's normal and a point on it (heart frame; the plane may be tilted off
            the axis).

        Returns
        -------
        (2, 3) float array
            Points in the heart frame, mm: nearest ``plane_theta``, then nearest ``plane_theta + pi``.
        """
        g = self.surfaces(s)
        base = g["base_w_mm"]
        n, p0 = np.asarray(normal_hrt, float), np.asarray(through_hrt, float)

        def ring(phi):
            r = self.annulus_mm(g, np.cos(phi), np.sin(phi))
            return np.stack([r * np.cos(phi), r * np.sin(phi), np.full_like(r, base)], -1)

        def off_plane(phi):
            return float((ring(np.atleast_1d(phi))[0] - p0) @ n)

        # the plane crosses the ring twice: bracket each crossing on a fine grid and solve
        phi = plane_theta + (np.arange(1440) + 0.5) * (2.0 * np.pi / 1440) - 0.5 * np.pi
        side = (ring(phi) - p0) @ n
        crossings = np.flatnonzero(np.sign(side[:-1]) != np.sign(side[1:]))
        pts = []
        for target in (plane_theta, plane_theta + np.pi):
            k = crossings[np.argmin(np.abs(phi[crossings] - target))]
            pts.append(ring(np.atleast_1d(brentq(off_plane, phi[k], phi[k + 1], xtol=1e-14)))[0])
        return np.array(pts)

    def contour_hrt(self, s: float, w: float, surface: str, n_points: int = 64) -> np.ndarray | None:
        """The endocardial or epicardial contour in the short-axis plane at height ``w``.

        Parameters
        ----------
        s : float
            Contraction.
        w : float
            Height of the plane above the epicardial apex, mm.
        surface : {"endo", "epi"}
        n_points : int
            Points, equally spaced in angle, counter-clockwise from ``u``.

        Returns
        -------
        (n_points, 3) float array or None
            Points in the heart frame, mm; None where the plane misses the surface.
        """
        g = self.surfaces(s)
        a, c, delta = ((g["a_endo_mm"], g["c_endo_mm"], self.endo_delta) if surface == "endo"
                       else (g["a_epi_mm"], g["c_epi_mm"], self.epi_delta))
        xi = (g["base_w_mm"] - w) / c
        if not 0.0 <= xi < 1.0:
            return None
        theta = np.arange(n_points) * 2 * np.pi / n_points
        r = a * delta.radius_factor(np.cos(theta), np.sin(theta), np.full_like(theta, xi))
        return np.column_stack([r * np.cos(theta), r * np.sin(theta), np.full_like(theta, w)])

    def rv_insertions_hrt(self, s: float, w: float) -> np.ndarray | None:
        """The two RV insertion points on the LV epicardium in the short-axis plane at height ``w``.

        They are where the RV crescent's horns meet the LV epicardium, at the crescent's
        half-angle either side of the septal direction (v > 0 first, then v < 0). None
        where the plane cuts no RV (above the tricuspid annulus or below the RV apex).

        Returns
        -------
        (2, 3) float array or None
            Points in the heart frame, mm.
        """
        g = self.surfaces(s)
        base = g["base_w_mm"]
        xi = (base - w) / g["c_epi_mm"]
        if not 0.0 <= xi < 1.0:
            return None
        rv = self._rv(g, s)
        if not rv["top"] - rv["length"] < w <= rv["top"]:
            return None
        out = []
        for th in (rv["half_angle"], -rv["half_angle"]):
            r = float(self.epicardium_mm(g, np.cos(th), np.sin(th), xi))
            out.append([r * np.cos(th), r * np.sin(th), w])
        return np.array(out)


def polar(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance from the long axis and the cosine and sine of the angle from ``u`` (angle 0 on the axis)."""
    rho = np.hypot(u, v)
    safe = np.where(rho > 0, rho, 1.0)
    return rho, np.where(rho > 0, u / safe, 1.0), v / safe


def rv_profile(cos_t: np.ndarray, sin_t: np.ndarray, half_angle: float, depth: float, span: float) -> np.ndarray:
    """The RV crescent's reach outside a unit circle (the LV epicardium) in the direction ``(cos_t, sin_t)``,
    as a fraction of its reach on ``u``: 1 there, more either side (the crescent is longer than it
    is deep), 0 at the insertion points (``+-half_angle``) and beyond.

    The free wall is an ellipse centred on ``u``, through the insertion points and the point
    ``1 + depth`` out on ``u``, with semi-axis ``span`` across ``u``; the profile is where a ray from
    the circle's centre meets it, less 1, over ``depth``.

    Examples
    --------
    >>> theta = np.radians([0.0, 30.0, 65.0, 90.0])
    >>> np.round(rv_profile(np.cos(theta), np.sin(theta), np.radians(65.0), 0.9, 1.55), 3)
    array([1.   , 1.086, 0.   , 0.   ])
    """
    cos_edge, sin_edge = np.cos(half_angle), np.sin(half_angle)
    k = np.sqrt(1.0 - (sin_edge / span) ** 2)
    centre = (cos_edge + k * (1.0 + depth)) / (1.0 + k)  # ((cos_edge - centre) / a)**2 = k**2, a = 1 + depth - centre
    a = 1.0 + depth - centre
    # rho**2 (cos**2 / a**2 + sin**2 / span**2) - 2 rho centre cos / a**2 + centre**2 / a**2 - 1 = 0, larger root
    qa = (cos_t / a) ** 2 + (sin_t / span) ** 2
    qb = -2.0 * centre * cos_t / a**2
    qc = (centre / a) ** 2 - 1.0
    rho = (-qb + np.sqrt(np.clip(qb * qb - 4.0 * qa * qc, 0.0, None))) / (2.0 * qa)
    return np.where(cos_t > cos_edge, np.clip((rho - 1.0) / depth, 0.0, None), 0.0)


def random_atrial_bumps(rng: np.random.Generator) -> tuple:
    """One heart's atrial irregularity (:attr:`HeartShape.atrial_bumps`): eight harmonic coefficients for
    each atrium, SD :data:`ATRIAL_BUMP_SD`."""
    return tuple((name, tuple(float(c) for c in rng.normal(0.0, ATRIAL_BUMP_SD, 8))) for name in ("la", "ra"))


def random_papillaries(rng: np.random.Generator) -> tuple:
    """One heart's papillary muscles (:attr:`HeartShape.papillaries`): the anterolateral and the
    posteromedial, each moved, sized and its tip raised or lowered at random; in a share
    :data:`PAPILLARY_BIFID` of hearts the posteromedial has two smaller heads side by side."""

    def jitter(sd):
        return float(np.clip(rng.normal(0.0, sd), -2.0 * sd, 2.0 * sd))

    muscles = []
    for k, place in enumerate(PAPILLARY_ANGLES):
        angle, size = place + jitter(PAPILLARY_ANGLE_SD), 1.0 + jitter(PAPILLARY_SIZE_SD)
        heads = (0.0,)
        if k == 1 and rng.random() < PAPILLARY_BIFID:  # the posteromedial, in two heads
            heads, size = (-PAPILLARY_BIFID_APART, PAPILLARY_BIFID_APART), size * PAPILLARY_BIFID_SIZE
        muscles += [(angle + d, size, PAPILLARY_TOP + jitter(PAPILLARY_TOP_SD)) for d in heads]
    return tuple(muscles)


LV_OVAL = (0.045, 0.015, 0.015, 0.08)  # the LV's sections' ovality (Perturbation.ellipse): mean, SD, range; 0.045
                                        # makes the short diameter 0.91 of the long
APEX_BEND_MM = (9.0, 3.0, 3.0, 15.0)  # how far the LV's apex lies off the straight axis through the base: mean,
                                      # SD, range (Pose.bend_mm)
APEX_BEND_ANGLE_SD = 0.6  # its direction about the axis: away from the RV (angle pi from u) give or take this (rad)


def random_oval(rng: np.random.Generator) -> tuple[float, float]:
    """One LV's ovality and the direction of its sections' long axis (radians from ``u``), for both surfaces'
    :attr:`Perturbation.ellipse` and :attr:`Perturbation.ellipse_angle`."""
    mean, sd, low, high = LV_OVAL
    return float(np.clip(rng.normal(mean, sd), low, high)), float(rng.uniform(0.0, np.pi))


def random_apex_bend(rng: np.random.Generator) -> tuple[float, float]:
    """Where one LV's apex lies off the straight axis through the base, ``(u, v)`` mm (a pose's
    ``bend_mm``): a curved ventricle, its apex turned away from the RV, towards the free wall."""
    mean, sd, low, high = APEX_BEND_MM
    size = float(np.clip(rng.normal(mean, sd), low, high))
    angle = np.pi + float(np.clip(rng.normal(0.0, APEX_BEND_ANGLE_SD), -2.0 * APEX_BEND_ANGLE_SD,
                                  2.0 * APEX_BEND_ANGLE_SD))
    return size * float(np.cos(angle)), size * float(np.sin(angle))


def ellipsoid_radius(u: np.ndarray, v: np.ndarray, w: np.ndarray, centre, semi_axes) -> np.ndarray:
    """The scaled radius of points ``(u, v, w)`` in an axis-aligned ellipsoid: <= 1 inside."""
    (cu, cv, cw), (au, av, aw) = centre, semi_axes
    return np.sqrt(((u - cu) / au) ** 2 + ((v - cv) / av) ** 2 + ((w - cw) / aw) ** 2)


def cycle_contraction(n_frames: int, es_fraction: float = 0.35) -> np.ndarray:
    """Contraction ``s`` at each of ``n_frames`` equally spaced frames of one cycle.

    Frame 0 is ED (``s = 0``). ``s`` rises smoothly to 1 at frame
    ``round(es_fraction * n_frames)`` (ES), falls to 0.1 by rapid filling over the
    next 35 % of the cycle, then relaxes linearly to 0 at the next ED.

    Examples
    --------
    >>> s = cycle_contraction(20)
    >>> float(s[0]), int(s.argmax()), float(s.max())
    (0.0, 7, 1.0)
    """
    es_frame = int(round(es_fraction * n_frames))
    tau_es = es_frame / n_frames
    tau = np.arange(n_frames) / n_frames
    tau_fill = min(tau_es + 0.35, 0.95)
    s = np.where(tau <= tau_es, np.sin(0.5 * np.pi * tau / tau_es) ** 2,
                 np.where(tau <= tau_fill, 0.1 + 0.9 * np.cos(0.5 * np.pi * (tau - tau_es) / (tau_fill - tau_es)) ** 2,
                          0.1 * (1 - tau) / (1 - tau_fill)))
    return s
