"""Image-only anatomy: trabeculae, the outflow tracts, great vessels and veins, atrial walls, AV valves and
the coronary arteries.

These structures change how the images look, never the truth: they are not in the
label maps, volumes, masses, contours or landmarks. Trabeculae, the mitral leaflets
(open, and the tent of the closed valve) lie inside the LV cavity and the RV's trabeculae
and moderator band inside the RV cavity, whose truth labels they keep (the core-lab
convention counts trabeculae and papillary muscles as blood pool); the outflow tracts, the great
vessels, the venae cavae, the pulmonary veins and the left atrial appendage are drawn
only where the analytic heart has no tissue, so they never cover the LV (or any labelled
chamber). The atrial walls, the interatrial septum and the closed mitral and tricuspid
valves lie only on points labelled background or atrial cavity (whose labels they keep),
never on the ventricles; the coronary arteries only on background or epicardial fat.

Heart frame (``_hrt``, mm) as in :mod:`cmrpipe.synth.anatomy`: ``u`` towards the
RV, ``w`` from the apex to the base, ``v = w x u``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmrpipe.synth.anatomy import (BACKGROUND, EPI_FAT, LA_CAVITY, LV_CAVITY, RA_CAVITY, HeartShape,
                                   polar)

NO_VESSEL, AORTIC_BLOOD, PULMONARY_BLOOD, VESSEL_WALL = range(4)
VESSEL_WALL_MM = 2.0
AORTIC_ROOT = (0.15, 0.35)  # the aortic root's centre, (u, v) in LV epicardial radii
BASE_FOLLOW = 0.8          # the roots of the great vessels follow this fraction of the base descent
RIDGE_AT_BASE = 0.15          # the LV's trabeculae reach this fraction as far at the base as at the apex (smooth base)
CORD_RADIUS_MM = (0.9, 2.4)   # the range of the LV's trabecular cords' radii, at ED
CORD_THICKENING = 0.5         # ... which grow by this fraction by ES (they crowd together: an irregular border)
CORD_DENSITY = (0.05, 0.7)    # the share of the strands' places round the wall that hold a cord, at the base and apex
CORD_GROUPING = 0.8           # the cords' density varies round the wall by this fraction (they come in groups)
CORD_ASIDE = 0.7              # a cord lies up to half this many places' spacing either side of its place's middle


@dataclass(frozen=True)
class Trabeculae:
    """Muscular strands along the LV endocardium, denser towards the apex and the free wall (:meth:`mask`):
    fine ridges on the wall and coarser cords along it, some lying on it and some free of it, which
    thicken in systole; and the RV's coarser ones with its moderator band (:meth:`rv_mask`).

    Parameters
    ----------
    n_strands : int
        Strands around the circumference.
    depth_mm : float
        How far (mm) they reach into the cavity at the apex, at ED.
    phase_rad, twist_rad, wave_phase_rad : float
        Angular position, how much they wander around the axis from base to apex, and the phase of that wandering.
    """

    n_strands: int = 22
    depth_mm: float = 3.5
    phase_rad: float = 0.0
    twist_rad: float = 0.6
    wave_phase_rad: float = 0.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Trabeculae":
        """One subject's trabeculation."""
        return cls(int(rng.integers(12, 22)), float(rng.uniform(2.5, 4.5)), float(rng.uniform(0, 2 * np.pi)),
                   float(rng.uniform(0.3, 1.0)), float(rng.uniform(0, 2 * np.pi)))

    def mask(self, heart: HeartShape, points_hrt: np.ndarray, s: float) -> np.ndarray:
        """Whether each point (inside the LV cavity) is in a trabecula at contraction ``s``.

        Parameters
        ----------
        points_hrt : (n, 3) float array
            Heart-frame points, mm, all in the LV cavity.

        Returns
        -------
        (n,) bool array
        """
        p = np.asarray(points_hrt, float).reshape(-1, 3)
        g = heart.surfaces(s)
        u, v, w = p[:, 0], p[:, 1], p[:, 2]
        rho, cos_t, sin_t = polar(u, v)
        xi = np.clip((g["base_w_mm"] - w) / g["c_endo_mm"], 0.0, 1.0)
        r_endo = heart.endocardium_mm(g, cos_t, sin_t, xi)
        depth = r_endo - rho
        septal = np.clip(cos_t, 0.0, None)
        reach = self.depth_mm * (RIDGE_AT_BASE + (1.0 - RIDGE_AT_BASE) * xi) * (1.0 - 0.6 * septal) * (1.0 + 0.3 * s)
        # ridges and cords lie within this depth of the wall: only the points there need their pattern
        out = np.zeros(len(p), bool)
        k = np.flatnonzero(depth < reach + 2.0 * CORD_RADIUS_MM[1] * (1.0 + CORD_THICKENING * s))
        cos_t, sin_t, xi, r_endo, depth, septal, reach = (a[k] for a in (cos_t, sin_t, xi, r_endo, depth, septal,
                                                                           reach))
        theta = np.arctan2(sin_t, cos_t)
        angle = self.n_strands * theta + self.twist_rad * self.n_strands * np.sin(2.6 * np.pi * xi
                                                                                    + self.wave_phase_rad)
        # strands in irregular groups: a slow modulation round the wall that drifts with depth, and a
        # second spacing (in golden ratio to the first) so that they never repeat evenly like a cog's teeth
        pattern = (np.cos(angle + self.phase_rad) + 0.5 * np.cos(0.5 * angle + 3.0 * xi)
                   + 0.6 * np.cos(3.0 * theta + 7.0 * xi + self.wave_phase_rad)
                   + 0.6 * np.cos(1.618 * angle - 4.0 * xi + self.phase_rad))
        ridges = (depth < reach) & (pattern > 0.4 + 0.9 * depth / np.maximum(reach, 1e-6))
        # coarser cords along the wall (they wander round it with the ridges as they run down), each of its own
        # thickness and distance from the wall: some lie on it (a bump in section), some stand free of it (a
        # dark dot in the cavity, tied to the wall by strands too fine to see)
        slot = (angle + self.phase_rad) / (2.0 * np.pi)
        # in groups round the wall (a slow wave that turns with depth), so that they never line up like teeth
        groups = 1.0 + CORD_GROUPING * np.cos(2.0 * theta + 4.0 * xi + self.wave_phase_rad)
        density = (CORD_DENSITY[0] + (CORD_DENSITY[1] - CORD_DENSITY[0]) * xi) * (1.0 - 0.6 * septal) * groups
        cords = np.zeros(len(k), bool)
        drawn = np.array([_scatter(np.arange(float(self.n_strands)), j, self.phase_rad) for j in range(4)])
        # each cord lies off the middle of its place round the wall and may overlap its neighbours' places
        for neighbour in (-1.0, 0.0, 1.0):
            place = np.round(slot) + neighbour
            size, off, present, aside = drawn[:, np.mod(place, self.n_strands).astype(np.int64)]
            arc_mm = (slot - place - CORD_ASIDE * (aside - 0.5)) * 2.0 * np.pi / self.n_strands * r_endo
            radius = ((CORD_RADIUS_MM[0] + (CORD_RADIUS_MM[1] - CORD_RADIUS_MM[0]) * size)
                      * (1.0 + CORD_THICKENING * s))
            cords |= (present < density) & (arc_mm**2 + (depth - off * (reach + radius)) ** 2 < radius**2)
        out[k] = ridges | cords
        return out

    def rv_mask(self, heart: HeartShape, points_hrt: np.ndarray, s: float) -> np.ndarray:
        """Whether each point (inside the RV cavity) is in an RV trabecula or the moderator band at ``s``.

        The RV is more coarsely trabeculated than the LV: a few thick strands along its free wall,
        reaching further into the cavity towards its apex, most of which they fill. The moderator band
        crosses the cavity from the septum to the free wall about 60 % of the way from the
        tricuspid annulus to the RV apex. Drawn from the subject's LV trabeculation (no draws of
        their own). The points keep their RV cavity label.

        Parameters
        ----------
        points_hrt : (n, 3) float array
            Heart-frame points, mm, all in the RV cavity.

        Returns
        -------
        (n,) bool array
        """
        p = np.asarray(points_hrt, float).reshape(-1, 3)
        w = p[:, 2]
        rv = heart._rv(heart.surfaces(s), s)
        c = heart.rv_crescent(p, s)
        rho, cos_t, sin_t, gap = c["rho"], c["cos_t"], c["sin_t"], c["gap_mm"]
        z = np.clip(c["z"], 0.0, 1.0)                   # 0 at the annulus, 1 at the RV apex
        depth = c["reach_mm"] - gap                     # how far in from the free wall
        theta = np.arctan2(sin_t, cos_t)
        # strands that run obliquely (they wander round the wall quickly with height) in irregular groups
        angle = self.n_strands * theta + 2.0 * self.twist_rad * self.n_strands * np.sin(3.0 * np.pi * z
                                                                                         + self.wave_phase_rad)
        pattern = (np.cos(angle - self.phase_rad) + 0.7 * np.cos(0.37 * angle + 4.0 * z)
                   + 0.5 * np.cos(3.0 * theta - 6.0 * z + self.phase_rad))
        strand_reach = RV_TRABECULA_MM * (0.4 + 1.2 * z**2) * (1.0 + 0.4 * s)
        # towards its apex the RV is so trabeculated that the muscle fills most of the cavity
        threshold = 0.6 - 1.2 * np.clip((z - 0.6) / 0.4, 0.0, 1.0) ** 2
        strands = (depth < strand_reach) & (pattern > threshold + 0.9 * depth / np.maximum(strand_reach, 1e-6))
        # the moderator band, sloping a little towards the apex on its way to the free wall
        band_w = rv["top"] - (MODERATOR_BAND_AT + 0.05 * np.sin(self.phase_rad)) * rv["length"] - 0.3 * gap
        band_theta = MODERATOR_BAND_ANGLE + 0.15 * np.cos(self.phase_rad)
        across = rho * np.sin(theta - band_theta)
        band = np.hypot(w - band_w, across) < MODERATOR_BAND_RADIUS_MM
        return strands | band


def _scatter(place: np.ndarray, k: int, seed: float) -> np.ndarray:
    """The ``k``-th of a strand's random numbers in [0, 1), for each strand's ``place`` (an integer round the
    wall), fixed by ``seed``: the SplitMix64 finaliser of the place, ``k`` and the seed (integer arithmetic,
    the same on any machine; neighbours are unrelated).

    Examples
    --------
    >>> a = _scatter(np.arange(1000.0), 0, 1.0)
    >>> bool(0.45 < a.mean() < 0.55), bool(abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.1)
    (True, True)
    >>> bool((_scatter(np.arange(4.0), 0, 1.0) == _scatter(np.arange(4.0), 0, 1.0)).all())
    True
    """
    offset = (k * 0x9E3779B97F4A7C15 + int(seed * 1e9)) % 2**64  # Python integers: no overflow
    x = np.asarray(place).astype(np.int64).astype(np.uint64) * np.uint64(0x100000001B3) + np.uint64(offset)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53


RV_TRABECULA_MM = 4.0          # how far the RV trabeculae reach from the free wall at mid-cavity, at ED
MODERATOR_BAND_AT = 0.6        # fraction of the way from the tricuspid annulus to the RV apex
MODERATOR_BAND_ANGLE = -0.2    # its angle about the long axis (rad from u)
MODERATOR_BAND_RADIUS_MM = 2.5


@dataclass(frozen=True)
class GreatVessels:
    """The vessels at the heart: the RV outflow tract with the pulmonary trunk, the LV outflow tract
    with the ascending aorta, the superior and inferior venae cavae into the right atrium, four
    pulmonary veins into the left atrium and the left atrial appendage.

    ``tubes`` holds one ``(code, points, radii, wall_mm)`` per vessel: a blood code
    (:data:`AORTIC_BLOOD` for oxygenated blood, :data:`PULMONARY_BLOOD` for venous), a polyline
    (heart frame at ED, mm) with a radius at each point, and the thickness of the wall the images
    show (the arteries' :data:`VESSEL_WALL_MM`; none for the thin-walled veins and appendage, whose
    tapering ends would otherwise show as grey spikes). ``lung_roots`` holds one ``(point, direction,
    radius_mm)`` (heart frame) where each pulmonary tree of :mod:`cmrpipe.synth.trees` starts, and
    ``inferior_cava`` the inferior vena cava's axis (two heart-frame points, from the right atrium
    down) and radius, from which the hepatic veins branch.
    """

    tubes: tuple
    lung_roots: tuple = ()
    inferior_cava: tuple = ()

    @classmethod
    def for_heart(cls, heart: HeartShape, axes_lps: np.ndarray, rng: np.random.Generator) -> "GreatVessels":
        """Vessels placed for a heart and its pose (``axes_lps``: heart axes u, v, w as LPS columns)."""
        g = heart.surfaces(0.0)
        a, base = g["a_epi_mm"], g["base_w_mm"]
        to_hrt = np.asarray(axes_lps).T
        sup, left, ant = to_hrt @ [0.0, 0.0, 1.0], to_hrt @ [1.0, 0.0, 0.0], to_hrt @ [0.0, -1.0, 0.0]
        e_w = np.array([0.0, 0.0, 1.0])

        def unit(d):
            return d / np.linalg.norm(d)

        jitter = rng.normal(0.0, 0.1, (4, 3))
        a0 = np.array([AORTIC_ROOT[0] * a, AORTIC_ROOT[1] * a, base - 10.0])
        a1 = a0 + 30.0 * unit(0.8 * e_w + 0.6 * sup + 0.3 * ant + jitter[0])
        a2 = a1 + 50.0 * unit(sup - 0.35 * left + 0.15 * ant + jitter[1])
        r_ao = float(np.clip(0.42 * heart.a_endo_mm + rng.normal(0, 1.0), 10.0, 16.0))
        p0 = np.array([1.0 * a, 0.55 * a, base - 14.0])  # the outflow rises from the top of the RV crescent
        p1 = p0 + 42.0 * unit(e_w + 0.5 * ant + 0.5 * left + jitter[2])
        p2 = p1 + 40.0 * unit(sup + 0.5 * left - 0.8 * ant + jitter[3])
        r_pa = float(np.clip(0.38 * heart.a_endo_mm + rng.normal(0, 1.0), 9.0, 14.0))
        tubes = [(AORTIC_BLOOD, (a0, a1, a2), (r_ao * 0.95, r_ao * 1.1, r_ao), VESSEL_WALL_MM),
                 (PULMONARY_BLOOD, (p0, p1, p2), (1.5 * r_pa, r_pa, r_pa * 0.95), VESSEL_WALL_MM)]
        # veins: the cavae run up and down from the right atrium, the pulmonary veins leave the back
        # of the left atrium, high above the mitral annulus, towards each lung, the appendage is a blind
        # pouch towards the front left
        atria = heart.atria(0.0)
        la_c, la_ax = np.asarray(atria["la"][0], float), np.asarray(atria["la"][1], float)
        ra_c, ra_ax = np.asarray(atria["ra"][0], float), np.asarray(atria["ra"][1], float)
        r_cava = float(np.clip(rng.normal(10.0, 1.0), 8.0, 12.5))
        svc0 = ra_c + 0.7 * ra_ax[2] * unit(sup)
        ivc0 = ra_c - 0.7 * ra_ax[2] * unit(sup) - 0.3 * ra_ax[0] * unit(ant)
        svc1 = svc0 + 70.0 * unit(sup + 0.1 * rng.normal(size=3))
        ivc1 = ivc0 - 60.0 * unit(sup + 0.1 * rng.normal(size=3))
        tubes += [(PULMONARY_BLOOD, (svc0, svc1), (r_cava, 0.9 * r_cava), 0.0),
                  (PULMONARY_BLOOD, (ivc0, ivc1), (1.1 * r_cava, r_cava), 0.0)]
        # the lungs' vessels grow from the pulmonary arteries (right and left of the trunk's end, the right
        # one behind the aorta) and from the pulmonary veins' ends
        roots = [(p2 + r_pa * unit(side * left - 0.8 * ant - 0.2 * sup), side * left - 0.8 * ant - 0.2 * sup,
                  0.75 * r_pa) for side in (1.0, -1.0)]
        reach = 0.75 * float(la_ax[:2].mean())
        for side in (1.0, -1.0):
            for tilt in (0.45, -0.35):
                d = unit(side * left - 0.7 * ant + tilt * sup + 0.6 * e_w
                         + 0.15 * rng.normal(size=3))
                start = la_c + reach * d
                r_pv = float(np.clip(rng.normal(6.5, 0.8), 5.0, 8.5))
                # towards the hilum, where it soon branches into the lung: a short, blunt stub (a long tapering
                # tube shows as a spike wherever a plane grazes it)
                bend = start + 20.0 * unit(d + 0.3 * side * left)
                end = bend + 15.0 * unit(d + 0.6 * side * left + 0.2 * rng.normal(size=3))
                tubes.append((AORTIC_BLOOD, (start, bend, end), (r_pv, 0.85 * r_pv, 0.7 * r_pv), 0.0))
                roots.append((end, end - bend, 0.7 * r_pv))
        laa0 = la_c + reach * unit(left + 0.8 * ant + 0.5 * sup)
        laa1 = laa0 + 24.0 * unit(ant + 0.6 * left - 0.5 * sup + 0.2 * rng.normal(size=3))
        tubes.append((AORTIC_BLOOD, (laa0, laa1), (8.0, 5.0), 0.0))
        return cls(tuple((code, tuple(map(tuple, line)), tuple(map(float, radius)), float(wall))
                         for code, line, radius, wall in tubes),
                   tuple((tuple(map(float, point)), tuple(map(float, direction)), float(radius))
                         for point, direction, radius in roots),
                   ((tuple(map(float, ivc0)), tuple(map(float, ivc1))), r_cava))

    def _moved(self, heart: HeartShape, s: float) -> float:
        return BASE_FOLLOW * (heart.surfaces(s)["base_w_mm"] - heart.surfaces(0.0)["base_w_mm"])

    def near(self, points_hrt: np.ndarray, margin_mm: float) -> np.ndarray:
        """Points within ``margin_mm`` of any vessel's wall at any phase."""
        p = np.asarray(points_hrt, float)
        out = np.zeros(p.shape[:-1], bool)
        for _, line, radius, wall in self.tubes:
            dist, r = _polyline_distance(p, np.asarray(line), np.asarray(radius), wall + margin_mm)
            out |= dist <= r + wall + margin_mm
        return out

    def labels(self, heart: HeartShape, points_hrt: np.ndarray, s: float) -> np.ndarray:
        """:data:`AORTIC_BLOOD`, :data:`PULMONARY_BLOOD`, :data:`VESSEL_WALL` or :data:`NO_VESSEL` at each point.

        Parameters
        ----------
        points_hrt : (n, 3) float array
            Heart-frame points, mm.
        s : float
            Contraction; the roots descend with the base and the aorta distends in systole.
        """
        p = np.asarray(points_hrt, float).copy()
        p[..., 2] -= self._moved(heart, s)
        out = np.zeros(p.shape[:-1], np.uint8)
        swell = 1.0 + 0.06 * np.sin(np.pi * min(max(s, 0.0), 1.0))
        # walls first, then blood, so that where two vessels meet their blood joins
        dists = [(code, wall, *_polyline_distance(p, np.asarray(line), np.asarray(radius) * swell, wall))
                 for code, line, radius, wall in self.tubes]
        for _, wall, dist, r in dists:
            out[dist <= r + wall] = VESSEL_WALL
        for code, _, dist, r in dists:
            out[dist <= r] = code
        return out


def _polyline_distance(points: np.ndarray, line: np.ndarray, radius: np.ndarray,
                       reach_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Distance (mm) of each point to a polyline, and the polyline's radius there (linear along each segment).

    Only points in the polyline's bounding box grown by its largest radius and ``reach_mm`` are
    measured; the others get an infinite distance (they are further than that from the tube's wall).
    """
    best = np.full(points.shape[:-1], np.inf)
    best_r = np.zeros(points.shape[:-1])
    grow = float(radius.max()) + reach_mm
    box = np.all((points >= line.min(axis=0) - grow) & (points <= line.max(axis=0) + grow), axis=-1)
    if not box.any():
        return best, best_r
    q = points[box]
    near, near_r = np.full(len(q), np.inf), np.zeros(len(q))
    for k in range(len(line) - 1):
        seg = line[k + 1] - line[k]
        length = float(np.linalg.norm(seg))
        d = seg / length
        rel = q - line[k]
        t = np.clip(rel @ d, 0.0, length)
        dist = np.linalg.norm(rel - t[..., None] * d, axis=-1)
        r = radius[k] + (radius[k + 1] - radius[k]) * t / length
        closer = dist - r < near - near_r
        near = np.where(closer, dist, near)
        near_r = np.where(closer, r, near_r)
    best[box], best_r[box] = near, near_r
    return best, best_r


ATRIAL_WALL_MM = 2.0       # thickness of the atrial walls and the interatrial septum
VALVE_MM = 2.0             # thickness of a mitral or tricuspid valve (the leaflets), as imaged (1-2 mm, blurred by motion)


def atrioventricular_detail(heart: HeartShape, points_hrt: np.ndarray, lab: np.ndarray, s: float,
                            valves_closed: bool) -> np.ndarray:
    """Where the images show the atrial walls, the interatrial septum and the AV valves.

    The walls are a thin shell just outside each atrium (the septum is the right atrium's
    side of the left atrium's wall); the closed tricuspid valve is a thin layer at the bottom
    of the right atrium. They lie only on points labelled background or atrial cavity, never
    on the ventricles. The closed mitral valve tents from the annulus into the LV cavity and
    the open mitral leaflets hang into it; both keep its label. The truth is unchanged.
    The ellipsoids are those of :meth:`HeartShape.labels`.

    Parameters
    ----------
    heart : HeartShape
    points_hrt : (..., 3) float array
        Heart-frame points, mm.
    lab : (...) uint8 array
        Their heart labels at contraction ``s``.
    s : float
        Contraction.
    valves_closed : bool
        Whether the AV valves are closed (systole and end-diastole); open valves are not drawn.

    Returns
    -------
    (...) bool array
        Points to image as heart wall.
    """
    g = heart.surfaces(s)
    rv = heart._rv(g, s)
    base = g["base_w_mm"]
    out = np.zeros(lab.shape, bool)
    p = np.asarray(points_hrt, float)
    cand = ((lab == BACKGROUND) | (lab == LA_CAVITY) | (lab == RA_CAVITY)) & (p[..., 2] > rv["top"] - 2.0)
    if not cand.any():
        return out
    u, v, w = p[cand, 0], p[cand, 1], p[cand, 2]
    k = lab[cand]
    atria = heart.atria(s)
    la_axes, ra_axes = atria["la"][1], atria["ra"][1]
    r_la = heart.atrium_radius(atria, "la", u, v, w)
    r_ra = heart.atrium_radius(atria, "ra", u, v, w)
    la_shell = (r_la > 1.0) & (r_la < 1.0 + ATRIAL_WALL_MM / min(la_axes)) & (w > base) & (k != LA_CAVITY)
    ra_shell = ((r_ra > 1.0) & (r_ra < 1.0 + ATRIAL_WALL_MM / min(ra_axes)) & (w > rv["top"])
                & (k == BACKGROUND))
    wall = la_shell | ra_shell
    if valves_closed:
        below = heart.atrium_radius(atria, "ra", u, v, w - VALVE_MM)
        # the tricuspid valve: the bottom of the right atrium, where the RV cavity lies just under it
        over_rv = heart.in_rv_cavity(np.column_stack([u, v, np.full_like(u, rv["top"] - 1.0)]), s)
        tricuspid = (k == RA_CAVITY) & ((below > 1.0) | (w - VALVE_MM < rv["top"])) & over_rv
        wall |= tricuspid
    out[cand] = wall
    out |= _closed_mitral_valve(heart, p, lab, g) if valves_closed else _open_mitral_leaflets(heart, p, lab, g)
    return out


MITRAL_TENT_MM = 5.0       # how far the closed mitral leaflets bow into the LV at their coaptation
MITRAL_COAPTATION = 0.3    # the coaptation line lies this many annulus radii off centre, away from the aorta


def _closed_mitral_valve(heart: HeartShape, p: np.ndarray, lab: np.ndarray, g: dict) -> np.ndarray:
    """Where the closed mitral valve lies (systole and end-diastole).

    Two leaflets, a thin sheet each, that slope from the annulus into the LV and meet along the
    coaptation line, which lies away from the aortic root (the anterior leaflet is the longer) and
    across the orifice from one commissure to the other: the tented valve of the long-axis views,
    the "smile" of the coaptation line in a basal short-axis slice. On LA or LV cavity points,
    whose labels it keeps.
    """
    out = np.zeros(lab.shape, bool)
    base = g["base_w_mm"]
    cand = (((lab == LA_CAVITY) | (lab == LV_CAVITY)) & (p[..., 2] > base - MITRAL_TENT_MM - VALVE_MM)
            & (p[..., 2] < base + VALVE_MM))
    if not cand.any():
        return out
    u, v, w = p[cand, 0], p[cand, 1], p[cand, 2]
    rho, cos_t, sin_t = polar(u, v)
    annulus = heart.annulus_mm(g, cos_t, sin_t)
    # across the orifice (towards the aortic root) and along the coaptation line, in annulus radii
    ca, sa = np.cos(MITRAL_AORTIC_ANGLE), np.sin(MITRAL_AORTIC_ANGLE)
    across = (u * ca + v * sa) / annulus + MITRAL_COAPTATION
    along = (v * ca - u * sa) / annulus / np.sqrt(1.0 - MITRAL_COAPTATION**2)
    # 0 on the coaptation line, 1 at the annulus: the anterior leaflet spans 1 + c, the posterior 1 - c
    leaflet = np.where(across > 0, across / (1.0 + MITRAL_COAPTATION), -across / (1.0 - MITRAL_COAPTATION))
    rim = np.clip((1.0 - (rho / annulus) ** 2) / 0.4, 0.0, 1.0)  # every leaflet hinges on the annulus
    tent = (MITRAL_TENT_MM * np.clip(1.0 - leaflet**2, 0.0, None) * np.clip(1.0 - np.abs(along) ** 6, 0.0, None)
            * rim)
    sheet = base + 0.5 * VALVE_MM - tent
    out[cand] = (rho < annulus) & (np.abs(w - sheet) < 0.5 * VALVE_MM)
    return out


MITRAL_AORTIC_ANGLE = np.arctan2(AORTIC_ROOT[1], AORTIC_ROOT[0])  # the aortic root's direction from the LV axis


def _open_mitral_leaflets(heart: HeartShape, p: np.ndarray, lab: np.ndarray, g: dict) -> np.ndarray:
    """Where the open mitral leaflets hang from the annulus into the LV cavity (diastole).

    A thin funnel: from the annulus down and slightly inwards, longer on the aortic side (the
    anterior leaflet, about 22 mm) than opposite it (the posterior, about 14 mm). On LV cavity points
    only, whose truth label they keep (like trabeculae, the leaflets count as blood pool).
    """
    out = np.zeros(lab.shape, bool)
    base = g["base_w_mm"]
    cand = (lab == LV_CAVITY) & (p[..., 2] > base - 24.0)
    if not cand.any():
        return out
    u, v, w = p[cand, 0], p[cand, 1], p[cand, 2]
    rho, cos_t, sin_t = polar(u, v)
    depth = base - w
    annulus = heart.annulus_mm(g, cos_t, sin_t)
    facing = cos_t * np.cos(MITRAL_AORTIC_ANGLE) + sin_t * np.sin(MITRAL_AORTIC_ANGLE)
    length = 14.0 + 8.0 * np.clip(facing, 0.0, None)
    leaflet = annulus - 1.5 - 0.3 * depth
    out[cand] = (depth < length) & (np.abs(rho - leaflet) < 0.5 * VALVE_MM)
    return out


CORONARY_RADIUS_MM = 2.0   # the coronary arteries' radius as imaged
CORONARY_GAP_MM = 2.5      # they run this far outside the epicardium, in the groove fat
CORONARY_TAPER = 0.45      # the descending arteries narrow by this fraction of their radius to their ends


def coronary_arteries(heart: HeartShape, points_hrt: np.ndarray, lab: np.ndarray, s: float) -> np.ndarray:
    """Where the images show the coronary arteries, in the grooves just outside the ventricles (grey dots
    and strands, in the groove fat where there is some).

    The circumflex runs round the left atrioventricular groove (outside the mitral annulus, away
    from the RV), the right coronary round the tricuspid annulus outside the RV, and the anterior
    and posterior descending arteries down the interventricular grooves at the RV insertions (the
    anterior one most of the way to the apex, the posterior one half-way), in the grooves' fat just
    beyond the insertions and narrowing as they go (:data:`CORONARY_TAPER`). On points labelled
    background or epicardial fat only, whose labels they keep.

    Parameters
    ----------
    heart : HeartShape
    points_hrt : (..., 3) float array
        Heart-frame points, mm.
    lab : (...) uint8 array
        Their heart labels at contraction ``s``.
    s : float
        Contraction.

    Returns
    -------
    (...) bool array
    """
    out = np.zeros(lab.shape, bool)
    p = np.asarray(points_hrt, float)
    g = heart.surfaces(s)
    rv = heart._rv(g, s)
    base, c_epi = g["base_w_mm"], g["c_epi_mm"]
    w_all = p[..., 2]
    cand = np.flatnonzero(((w_all > base - 0.9 * c_epi) & (w_all < base + 8.0)
                           & ((lab == BACKGROUND) | (lab == EPI_FAT))).ravel())
    if not len(cand):
        return out
    u, v, w = p.reshape(-1, 3)[cand].T
    hit = np.zeros(len(u), bool)
    # circumflex just above the base, outside the epicardial rim, away from the RV; right coronary round the
    # RV's top, outside its free wall
    for height in (base + 1.5, rv["top"] + 1.0):
        k = np.flatnonzero(np.abs(w - height) < CORONARY_RADIUS_MM)
        rho, cos_t, sin_t = polar(u[k], v[k])
        xi = (base - min(height, base)) / c_epi
        rim = heart.epicardium_mm(g, cos_t, sin_t, xi) + CORONARY_GAP_MM
        left = cos_t < np.cos(rv["half_angle"])
        if height < base:
            rim = rim + heart._rv_reach(rv, cos_t, sin_t, np.full(len(k), rv["top"]), rv["wall_mm"])
        hit[k] |= (left == (height > base)) & (np.hypot(rho - rim, w[k] - height) < CORONARY_RADIUS_MM)
    # the descending arteries in the interventricular grooves' fat, at the two insertion points: just beyond
    # where the RV's wall meets the LV's epicardium (at the insertion itself they would lie in the RV's wall)
    xi = (base - w) / c_epi
    groove = rv["half_angle"] + (rv["wall_mm"] + CORONARY_RADIUS_MM) / g["a_epi_mm"]
    for sign, reach in ((1.0, 0.85), (-1.0, 0.5)):
        ca, sa = np.cos(groove), sign * np.sin(groove)
        k = np.flatnonzero((xi >= 0.0) & (xi < reach) & (u * ca + v * sa > 0.0)
                           & (np.abs(v * ca - u * sa) < CORONARY_RADIUS_MM))
        r = heart.epicardium_mm(g, ca, sa, xi[k]) + CORONARY_GAP_MM
        radius = CORONARY_RADIUS_MM * (1.0 - CORONARY_TAPER * xi[k] / reach)
        hit[k] |= np.hypot(u[k] - r * ca, v[k] - r * sa) < radius
    out.reshape(-1)[cand] = hit
    return out


JET_RADIUS_MM = 7.0    # half-width (1/e) of a flow jet
JET_LENGTH_MM = 30.0   # how far (1/e) the mitral inflow jet reaches into the LV


def flow_jets(heart: HeartShape, points_hrt: np.ndarray, lab: np.ndarray, s: float, filling: float,
              ejection: float) -> np.ndarray:
    """How much fast flow dephases the blood at each point (0 none, 1 full), inside the LV cavity only.

    In diastole the mitral inflow jet runs from the middle of the annulus down the long axis
    towards the apex; in systole the outflow jet runs from the middle of the cavity up to the
    aortic root. ``filling`` and ``ejection`` (0-1) are how fast the LV fills or empties at this
    frame; the images darken the blood by the protocol's jet depth times this.

    Returns
    -------
    (...) float array
    """
    out = np.zeros(lab.shape)
    if filling <= 0 and ejection <= 0:
        return out
    cavity = lab == LV_CAVITY
    if not cavity.any():
        return out
    p = np.asarray(points_hrt, float)[cavity]
    g = heart.surfaces(s)
    base, a = g["base_w_mm"], g["a_epi_mm"]
    depth = base - p[:, 2]
    inflow = np.exp(-((np.hypot(p[:, 0], p[:, 1]) / JET_RADIUS_MM) ** 2)
                    - (np.clip(depth, 0.0, None) / JET_LENGTH_MM) ** 2)
    # outflow: along the segment from the middle of the cavity to the aortic root
    start = np.array([0.0, 0.0, base - 25.0])
    end = np.array([AORTIC_ROOT[0] * a, AORTIC_ROOT[1] * a, base])
    axis = end - start
    t = np.clip((p - start) @ axis / (axis @ axis), 0.0, 1.0)
    off = np.linalg.norm(p - start - t[:, None] * axis, axis=1)
    outflow = np.exp(-((off / JET_RADIUS_MM) ** 2)) * t
    out[cavity] = np.maximum(filling * inflow, ejection * outflow)
    return out
