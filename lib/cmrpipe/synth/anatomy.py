"""The analytic heart of a synthetic subject, in its own frame, at any phase of the cycle.

Heart frame (``_hrt``, mm): ``w`` runs along the LV long axis from the epicardial
apex (``w = 0``, fixed through the cycle) to the base; ``u`` points from the LV
axis towards the right ventricle (septal direction); ``v = w x u``.

The LV is a truncated prolate ellipsoidal shell: at depth ``xi`` below the base
(0 at the base, 1 at the apex) and angle ``theta`` about the long axis the
endocardial radius is ``a * sqrt(1 - xi**2) * (1 + delta(theta, xi)) * taper(xi)``;
the epicardium likewise with its own semi-axes. ``delta`` is a smooth random
perturbation (circumferential harmonics whose amplitude varies with depth) that a
low-order shape model cannot represent exactly; the taper narrows both surfaces
towards the base, so the ventricle is widest about a third of the way down and the
mitral annulus narrower than the cavity below it. Volumes follow in closed form up
to one quadrature: ``V = a**2 * c * J(delta)`` with ``J = pi/3 * 2`` for no
perturbation and no taper (a half ellipsoid).

From end-diastole (ED, ``s = 0``) to end-systole (ES, ``s = 1``) the endocardium
contracts radially and longitudinally, the epicardial apex stays put so the base
descends, and the epicardial radius is solved so that the myocardial volume is
the same at every phase (so ED and ES mass agree).

The right ventricle is the part of an ellipsoid on the septal side that lies
outside the LV epicardium (a crescent; where its boundary meets the LV epicardium
lie the RV insertion points), with a thin free wall; it is shorter than the LV, so its
apex lies short of the LV apex (:data:`RV_LENGTH`). The atria are ellipsoids above the
base (:meth:`HeartShape.atria`); the endocardial rim at the base is the mitral annulus.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

# tissue labels of the synthetic anatomy (label maps use these codes)
BACKGROUND, LV_CAVITY, LV_MYO, RV_CAVITY, RV_WALL, LA_CAVITY, EPI_FAT, PAPILLARY, RA_CAVITY = range(9)
HEART_LABELS = {"lv_cavity": LV_CAVITY, "lv_myo": LV_MYO, "rv_cavity": RV_CAVITY, "rv_wall": RV_WALL,
                "la_cavity": LA_CAVITY, "epi_fat": EPI_FAT, "papillary": PAPILLARY, "ra_cavity": RA_CAVITY}
LV_BLOOD_POOL = (LV_CAVITY, PAPILLARY)
"""Labels inside the endocardial surface: papillary muscles count as blood pool (cavity
volume) and not as myocardium (mass), as in the UK Biobank reference contours."""

LA_LENGTH, RA_LENGTH = 0.38, 0.40  # long semi-axes of the atria, fractions of the LV's endocardial one
ATRIUM_OFFSET = 0.45  # an atrium's centre lies this many of its long semi-axes above the base
ATRIAL_FILLING = 0.12  # the atria grow by this fraction from ED to ES
GROOVE_FAT_MM = 5.0  # reach of the fat in the interventricular and atrioventricular grooves
AV_GROOVE_MM = 9.0   # height of the atrioventricular groove's fat above the base
PAPILLARY_ANGLES = (np.pi - 0.75, np.pi + 1.1)  # from u: anterolateral (shown at ~2 o'clock), posteromedial (~6)
PAPILLARY_CENTRE = 0.82  # a papillary muscle's axis, fraction of the endocardial radius in its direction
RV_LENGTH = 0.75  # the RV cavity's long semi-axis, fraction of the LV's: its apex lies short of the LV apex
_N_THETA, _N_XI = 256, 200  # quadrature for volumes (relative error < 1e-5)


@dataclass(frozen=True)
class Perturbation:
    """Smooth radial perturbation ``delta(theta, xi) = sum_k amp_k (1 + slope_k xi) cos(k theta + phase_k)``.

    ``k`` runs from 1; amplitudes are fractions of the radius. ``basal_taper`` narrows the
    surface towards the base (see :meth:`radius_factor`).
    """

    amp: tuple[float, ...] = ()
    slope: tuple[float, ...] = ()
    phase: tuple[float, ...] = ()
    basal_taper: float = 0.0

    def radius_factor(self, cos_t: np.ndarray, sin_t: np.ndarray, xi: np.ndarray) -> np.ndarray:
        """The surface's radius over its radial semi-axis ``a`` at angle ``theta`` and depth ``xi``.

        ``sqrt(1 - xi**2)`` (the ellipsoid) times ``1 + delta`` times the basal taper
        ``1 - basal_taper * max(0, 1 - xi / TAPER_DEPTH)**2``, which narrows the surface towards
        the base (the mitral annulus is narrower than the ventricle below it).
        """
        xi = np.asarray(xi)
        return np.sqrt(1 - xi**2) * (1 + self.at(cos_t, sin_t, xi)) * taper(xi, self.basal_taper)

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


TAPER_DEPTH = 0.45  # the basal taper fades out at this depth below the base (fraction of the long axis)


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
        Largest radius of the two papillary muscles at ED (they thicken in systole).
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
        reach = max(g["a_epi_mm"] * 1.4, rv["u0"] + rv["au"] + 4.0, rv["av"] + 4.0,
                    *(abs(c[0]) + ax[0] for c, ax in atria.values()), *(ax[1] for _, ax in atria.values())) + 6.0
        top = max(c[2] + ax[2] for c, ax in atria.values())
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

        # epicardial fat: a thin, patchy layer outside the LV epicardium (thicker at the base)
        cos2 = cos_t**2 - sin_t**2
        sin2 = 2 * sin_t * cos_t
        fat_mm = np.clip(2.5 * (1.2 - xi_ep) * (1 + 0.8 * (cos2 * 0.765 - sin2 * 0.644)), 0.0, None)
        lab[(rho <= r_epi + fat_mm) & (r_epi > 0)] = EPI_FAT

        # right ventricle: an ellipsoid on the septal side, outside the LV epicardium
        du, dw = u - rv["u0"], w - rv["w0"]
        q = (du / rv["au"]) ** 2 + (v / rv["av"]) ** 2 + (dw / rv["cw"]) ** 2
        q_wall = (du / (rv["au"] + 3.0)) ** 2 + (v / (rv["av"] + 3.0)) ** 2 + (dw / (rv["cw"] + 3.0)) ** 2
        rv_zone = (w <= base + 5.0) & (u > -0.2 * g["a_epi_mm"])
        lab[(q_wall <= 1) & rv_zone] = RV_WALL
        lab[(q <= 1) & rv_zone] = RV_CAVITY

        # right atrium above the RV, beside the left atrium; left atrium above the base
        lab[(ellipsoid_radius(u, v, w, *atria["ra"]) <= 1) & (w > base - 4.0)] = RA_CAVITY
        lab[(ellipsoid_radius(u, v, w, *atria["la"]) <= 1) & (w > base)] = LA_CAVITY

        # fat fills the grooves: where the RV wall meets the LV (interventricular grooves) and round
        # the base between the ventricle and the atria (atrioventricular groove)
        groove_lv = (rho <= r_epi + GROOVE_FAT_MM) & (r_epi > 0)
        grow = 1.0 + GROOVE_FAT_MM / min(rv["au"], rv["av"])
        groove_rv = (q_wall <= grow**2) & rv_zone
        r_epi_base = g["a_epi_mm"] * self.epi_delta.radius_factor(cos_t, sin_t, 0.0)
        annulus = g["a_endo_mm"] * self.endo_delta.radius_factor(cos_t, sin_t, 0.0)
        # a ring round the base, outside the annulus (the aortic root rises inside it)
        av_groove = ((w > base - 2.0) & (w < base + AV_GROOVE_MM) & (rho >= annulus)
                     & (rho <= r_epi_base + GROOVE_FAT_MM))
        lab[((groove_lv & groove_rv) | av_groove) & (lab == BACKGROUND)] = EPI_FAT

        lab[(rho <= r_epi) & (r_epi > 0)] = LV_MYO
        in_cavity = (rho <= r_endo) & (r_endo > 0)
        lab[in_cavity] = LV_CAVITY
        # two papillary muscles on the free wall, mid-cavity to near the apex, their bases on the wall
        xi_en = np.clip((base - w) / g["c_endo_mm"], 0.0, 1.0)
        for angle in PAPILLARY_ANGLES:
            cu, cv = np.cos(angle), np.sin(angle)
            centre = PAPILLARY_CENTRE * g["a_endo_mm"] * self.endo_delta.radius_factor(cu, cv, xi_en)
            d2 = (u - centre * cu) ** 2 + (v - centre * cv) ** 2
            radius = self.papillary_mm * (1 + 0.35 * s) * np.sin(np.pi * np.clip((xi_en - 0.2) / 0.65, 0.0, 1.0))
            lab[in_cavity & (d2 <= radius**2)] = PAPILLARY
        out[idx] = lab
        return out.reshape(shape)

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
        ra_u = self._rv(g, s)["u0"] + 0.25 * g["a_epi_mm"]
        return {"la": ((0.0, 0.0, base + offset * la_c), la_axes),
                "ra": ((ra_u, 0.0, base + ATRIUM_OFFSET * ra_c), (0.78 * a * fill, 0.85 * a * fill, ra_c))}

    def _rv(self, g: dict, s: float) -> dict[str, float]:
        """The RV cavity ellipsoid at a phase (it shortens less than the LV)."""
        k = self.rv_scale * (1 - 0.2 * s)
        return {"u0": 0.75 * g["a_epi_mm"], "au": 1.0 * g["a_epi_mm"] * k, "av": 1.4 * g["a_epi_mm"] * k,
                "w0": g["base_w_mm"] - 0.05 * g["c_epi_mm"], "cw": RV_LENGTH * g["c_epi_mm"] * (1 - 0.1 * s)}

    # ---- landmarks -----------------------------------------------------------------------

    def mitral_hinges_hrt(self, s: float, plane_theta: float) -> np.ndarray:
        """The two mitral annulus (hinge) points where a long-axis plane cuts the base ring.

        Parameters
        ----------
        s : float
            Contraction.
        plane_theta : float
            Angle (rad, about the long axis, from ``u``) of the long-axis plane.

        Returns
        -------
        (2, 3) float array
            Points in the heart frame, mm: at ``plane_theta`` and ``plane_theta + pi``.
        """
        g = self.surfaces(s)
        pts = []
        for th in (plane_theta, plane_theta + np.pi):
            r = g["a_endo_mm"] * float(self.endo_delta.radius_factor(np.cos(th), np.sin(th), 0.0))
            pts.append([r * np.cos(th), r * np.sin(th), g["base_w_mm"]])
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

        They are where the RV cavity's boundary meets the LV epicardium, found by
        bisection on the angle from the septal direction, one on each side (v > 0
        and v < 0). None where the plane cuts no RV.

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

        def epi_point(th):
            r = g["a_epi_mm"] * float(self.epi_delta.radius_factor(np.cos(th), np.sin(th), xi))
            return np.array([r * np.cos(th), r * np.sin(th), w])

        def inside_rv(th):
            p = epi_point(th)
            return ((p[0] - rv["u0"]) / rv["au"]) ** 2 + (p[1] / rv["av"]) ** 2 + ((w - rv["w0"]) / rv["cw"]) ** 2 <= 1

        if not inside_rv(0.0):
            return None
        out = []
        for sign in (1.0, -1.0):
            lo, hi = 0.0, np.pi
            if inside_rv(sign * hi):
                return None
            for _ in range(50):
                mid = 0.5 * (lo + hi)
                lo, hi = (mid, hi) if inside_rv(sign * mid) else (lo, mid)
            out.append(epi_point(sign * 0.5 * (lo + hi)))
        return np.array(out)


def polar(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance from the long axis and the cosine and sine of the angle from ``u`` (angle 0 on the axis)."""
    rho = np.hypot(u, v)
    safe = np.where(rho > 0, rho, 1.0)
    return rho, np.where(rho > 0, u / safe, 1.0), v / safe


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
