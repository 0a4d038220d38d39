"""Vessel trees in the lungs and the liver: arteries and veins branching from the hila.

Cine images show the lungs dark, crossed by bright vessels: large and branching near the
hila, smaller and sparser towards the periphery, round where they cross the plane and
long where they run in it; below the diaphragm, the hepatic veins branch through the
liver from the inferior vena cava, bright against the grey liver. Each tree grows from a
root (the right and left pulmonary arteries from the end of the pulmonary trunk, the four
pulmonary veins from the ends of their stubs on the left atrium, the right, middle and
left hepatic veins from the inferior vena cava where it runs through the liver) in
straight segments, each forking in two at its end, so that together they fill their organ
(a :class:`Territory`): random target points spread through it, a target close to a
segment's end is supplied, and the larger daughter turns towards the nearest targets still
unsupplied while the smaller one turns away (a form of space colonisation); a tip with no
unsupplied tissue near it stops. The daughters' radii follow Murray's law
(``r**3 = r_1**3 + r_2**3``, unevenly shared) and growth stops below
:data:`MIN_RADIUS_MM` (the lungs' finer vessels are texture:
:func:`cmrpipe.synth.render._lung_vessels`). A segment that would leave its organ or enter
the heart is tried once in another direction and otherwise dropped; the first generations
of the pulmonary trees may cross the mediastinum to reach the hila.

The trees are static, in the patient frame (LPS, mm), and image-only: the images show them
over their organ (their territory's signal, :data:`~cmrpipe.synth.body.PULMONARY_VESSEL` or
:data:`~cmrpipe.synth.body.HEPATIC_VESSEL`), never in the heart's truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.spatial import cKDTree

from cmrpipe.synth import body

LENGTH_PER_RADIUS = 6.0          # a segment is about this many radii long
LENGTH_RANGE_MM = (4.0, 25.0)
MIN_RADIUS_MM = 1.0              # thinner vessels are not grown
PASSAGE_GENERATIONS = 3          # the first generations may run through a territory's passage tissues
MINOR_SHARE = (0.2, 0.5)         # the smaller daughter's share of the parent's r**3
MAJOR_BEND_RAD = (0.12, 0.9)     # how far each daughter turns from its parent's direction
MINOR_BEND_RAD = (0.5, 1.0)
N_TARGET_DRAWS = 12000           # random points drawn in the chest; those in the organ are targets
INFLUENCE_MM = 100.0             # a tip turns towards its nearest targets within this distance
PULL_TARGETS = 12
KILL_MM = 14.0                   # a target this close to a segment's end is supplied
MAX_SEGMENTS = 30000
SAMPLE_MM = 1.0                  # axis samples for the point query
RADIUS_GROUPS_MM = (1.0, 1.5, 2.5, 4.0)  # segments are looked up in groups of similar radius
HEPATIC_RADIUS_MM = 6.0          # the hepatic veins' radius where they leave the inferior vena cava,
HEPATIC_DEPTH_MM = 15.0          # this far below the top of the liver


@dataclass(frozen=True)
class Territory:
    """The organ a kind of vessel tree fills, and how the images show it.

    ``organ``: the body tissue the targets lie in, and the only one a tree may run through after its
    first :data:`PASSAGE_GENERATIONS`; ``passage``: the other tissues those may cross (the mediastinum,
    to reach the hila); ``signal``: the body label naming the vessels' signal; ``inner_reach``: a target
    lies where the organ goes on beyond it, away from its nearest root, for at least this fraction of
    its distance from the root (the organ's outer rim gets no vessels); ``low_mm`` and ``high_mm``: the
    targets are drawn between these heights, relative to the diaphragm's rim and the heart's centre.
    """

    organ: int
    passage: tuple[int, ...]
    signal: int
    inner_reach: float
    low_mm: float
    high_mm: float

    @property
    def tissues(self) -> tuple[int, ...]:
        """Every tissue the trees may run through."""
        return (self.organ, *self.passage)


LUNGS = Territory(body.LUNG, (body.SOFT_TISSUE, body.MED_FAT), body.PULMONARY_VESSEL, 0.5, -60.0, 150.0)
LIVER = Territory(body.LIVER, (), body.HEPATIC_VESSEL, 0.25, -110.0, 40.0)


@dataclass(frozen=True, eq=False)
class VesselTree:
    """Straight cylindrical segments in a :class:`Territory`: ``starts_lps`` and ``ends_lps`` (n, 3) in mm,
    ``radii_mm`` (n,), and each one's ``parents`` (n,) (the segment it branches from; -1 for a root)."""

    territory: Territory
    starts_lps: np.ndarray
    ends_lps: np.ndarray
    radii_mm: np.ndarray
    parents: np.ndarray

    @classmethod
    def grow(cls, territory: Territory, roots: list[tuple[np.ndarray, np.ndarray, float]], chest: body.Chest,
             rng: np.random.Generator, blocked=None) -> "VesselTree":
        """Grow one tree from each root.

        Parameters
        ----------
        territory : Territory
            The organ the trees fill (:data:`LUNGS`, :data:`LIVER`).
        roots : list of (point_lps, direction_lps, radius_mm)
            Where each tree starts (mm), which way (any length) and how thick.
        chest : Chest
        rng : numpy.random.Generator
        blocked : callable, optional
            ``blocked(points_lps) -> bool array``: where no vessel may run (the heart).
        """
        p = np.array([r[0] for r in roots], float).reshape(-1, 3)
        targets = _targets(territory, chest, rng, p, blocked)
        alive = np.ones(len(targets), bool)
        d = _unit(np.array([r[1] for r in roots], float).reshape(-1, 3))
        r = np.array([r[2] for r in roots], float)
        parent = np.full(len(p), -1)
        generation, count = 0, 0
        starts, ends, radii, parents = [], [], [], []
        while len(p) and count < MAX_SEGMENTS:
            length = np.clip(LENGTH_PER_RADIUS * r * rng.uniform(0.7, 1.3, len(p)), *LENGTH_RANGE_MM)
            ok = _inside(territory, chest, p, d, length, generation, blocked)
            retry = np.flatnonzero(~ok)
            if len(retry):
                d[retry] = _unit(d[retry] + 0.9 * rng.normal(size=(len(retry), 3)))
                ok[retry] = _inside(territory, chest, p[retry], d[retry], length[retry], generation, blocked)
            p, d, r, length, parent = p[ok], d[ok], r[ok], length[ok], parent[ok]
            end = p + length[:, None] * d
            index = count + np.arange(len(p))
            starts.append(p)
            ends.append(end)
            radii.append(r)
            parents.append(parent)
            count += len(p)
            # the tissue these segments now supply needs no other vessel
            if alive.any():
                live = np.flatnonzero(alive)
                for hits in cKDTree(targets[live]).query_ball_point(end, KILL_MM):
                    alive[live[hits]] = False
            # two daughters each, turning towards the tissue that is still unsupplied near the segment's end
            # (the smaller one the other way); a tip with none near stops; Murray's law shares r**3
            pull = _pull(targets[alive], end)
            grows = (np.linalg.norm(pull, axis=1) > 0) | (generation < PASSAGE_GENERATIONS)
            p, d, r, pull, end, index = p[grows], d[grows], r[grows], pull[grows], end[grows], index[grows]
            # the larger daughter turns towards the pull (by MAJOR_BEND_RAD at least and at most), the smaller
            # one away from it, in a plane turned at random about the parent
            towards = pull - np.sum(pull * d, axis=1, keepdims=True) * d
            aside = _unit(np.cross(d, rng.normal(size=(len(p), 3))))
            has_pull = np.linalg.norm(towards, axis=1) > 0.05
            towards = np.where(has_pull[:, None], _unit(towards + 1e-12), aside)
            angle = np.arctan2(np.linalg.norm(np.cross(d, pull), axis=1), np.sum(d * pull, axis=1))
            major = np.clip(angle, *MAJOR_BEND_RAD)
            twist = rng.uniform(-0.8, 0.8, len(p))[:, None]
            away = -_unit(np.cos(twist) * towards + np.sin(twist) * np.cross(d, towards))
            minor = rng.uniform(*MINOR_BEND_RAD, len(p))
            share = rng.uniform(*MINOR_SHARE, len(p))
            kids = [(end, _unit(np.cos(b)[:, None] * d + np.sin(b)[:, None] * side), r * part ** (1.0 / 3.0), index)
                    for b, side, part in ((major, towards, 1.0 - share), (minor, away, share))]
            p, d, r, parent = (np.concatenate(k) for k in zip(*kids))
            thick = r >= MIN_RADIUS_MM
            p, d, r, parent = p[thick], d[thick], r[thick], parent[thick]
            generation += 1
        if not starts:
            return cls(territory, np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, int))
        return cls(territory, *(np.concatenate(part) for part in (starts, ends, radii, parents)))

    @cached_property
    def _axis_samples(self) -> list[tuple[cKDTree, np.ndarray, float]]:
        """Points every :data:`SAMPLE_MM` or less along the segments' axes, in groups of similar radius:
        for each group a k-d tree of its points, their segments and how far from a point a segment
        holding it can be (its largest radius and half a sample step)."""
        length = np.linalg.norm(self.ends_lps - self.starts_lps, axis=1)
        counts = np.ceil(length / SAMPLE_MM).astype(int) + 1
        segment = np.repeat(np.arange(len(length)), counts)
        first = np.cumsum(counts) - counts
        t = (np.arange(counts.sum()) - np.repeat(first, counts)) / np.repeat(np.maximum(counts - 1, 1), counts)
        points = self.starts_lps[segment] + t[:, None] * (self.ends_lps - self.starts_lps)[segment]
        group = np.digitize(self.radii_mm[segment], RADIUS_GROUPS_MM)
        return [(cKDTree(points[group == g]), segment[group == g],
                 float(self.radii_mm[segment[group == g]].max()) + 0.5 * SAMPLE_MM)
                for g in np.unique(group)]

    def contains(self, points_lps: np.ndarray) -> np.ndarray:
        """Whether each point lies inside a vessel (exactly: every segment with an axis sample close
        enough to hold the point is measured).

        Parameters
        ----------
        points_lps : (..., 3) float array
            Patient coordinates, mm.

        Returns
        -------
        (...) bool array
        """
        q = np.asarray(points_lps, float)
        flat = q.reshape(-1, 3)
        out = np.zeros(len(flat), bool)
        if not len(self.radii_mm) or not len(flat):
            return out.reshape(q.shape[:-1])
        query = cKDTree(flat)
        for samples, segment, reach in self._axis_samples:
            pairs = query.sparse_distance_matrix(samples, reach, output_type="ndarray")
            point, seg = pairs["i"], segment[pairs["j"]]
            a = self.starts_lps[seg]
            ab = self.ends_lps[seg] - a
            t = np.clip(np.sum((flat[point] - a) * ab, axis=1) / np.maximum(np.sum(ab * ab, axis=1), 1e-12), 0.0, 1.0)
            dist = np.linalg.norm(flat[point] - a - t[:, None] * ab, axis=1)
            out[point[dist <= self.radii_mm[seg]]] = True
        return out.reshape(q.shape[:-1])

    def mask(self, labels: np.ndarray, points_lps: np.ndarray) -> np.ndarray:
        """Where the vessels run through the tissues of their territory.

        Parameters
        ----------
        labels : (...) uint8 array
            Body labels at ``points_lps``.
        points_lps : (..., 3) float array

        Returns
        -------
        (...) bool array
        """
        out = np.zeros(np.shape(labels), bool)
        where = np.isin(labels, self.territory.tissues)
        if where.any():
            out[where] = self.contains(np.asarray(points_lps)[where])
        return out


def _inside(territory: Territory, chest: body.Chest, p: np.ndarray, d: np.ndarray, length: np.ndarray,
            generation: int, blocked=None) -> np.ndarray:
    """Whether segments from ``p`` along ``d`` stay in their organ (or, early on, its passage tissues) and out
    of ``blocked``: their middles and ends are tested."""
    allowed = territory.tissues if generation < PASSAGE_GENERATIONS else (territory.organ,)
    probes = p[:, None] + np.array([0.5, 1.0])[None, :, None] * length[:, None, None] * d[:, None]
    ok = np.isin(chest.labels(probes), allowed).all(axis=1)
    if blocked is not None and ok.any():
        ok[ok] = ~blocked(probes[ok].reshape(-1, 3)).reshape(-1, 2).any(axis=1)
    return ok


def _targets(territory: Territory, chest: body.Chest, rng: np.random.Generator, roots_lps: np.ndarray,
             blocked=None) -> np.ndarray:
    """Points spread at random through the inner part of the territory's organ, between its heights
    (LPS, mm), that the trees grow towards.

    A point is inner when the organ goes on beyond it, away from its nearest root, for at least the
    territory's ``inner_reach`` of its distance from the root (the outer third or so of the lungs, where
    cine images show almost no vessels, gets none).
    """
    centre = np.asarray(chest.heart_centre_lps, float)
    low = np.array([-chest.half_width_mm, -1.2 * chest.half_depth_mm, chest.diaphragm_z_mm + territory.low_mm])
    high = np.array([chest.half_width_mm, 1.2 * chest.half_depth_mm, centre[2] + territory.high_mm])
    points = rng.uniform(low, high, (N_TARGET_DRAWS, 3))
    keep = chest.labels(points) == territory.organ
    if blocked is not None:
        keep[keep] = ~blocked(points[keep])
    points = points[keep]
    if not len(points) or not len(roots_lps):
        return points
    root = roots_lps[cKDTree(roots_lps).query(points)[1]]
    beyond = points + territory.inner_reach * (points - root)
    return points[chest.labels(beyond) == territory.organ]


def _pull(targets: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mean unit vector from each end towards its :data:`PULL_TARGETS` nearest targets within
    :data:`INFLUENCE_MM` (0 where there are none)."""
    out = np.zeros_like(ends)
    if not len(targets):
        return out
    dist, idx = cKDTree(targets).query(ends, k=PULL_TARGETS, distance_upper_bound=INFLUENCE_MM)
    found = np.isfinite(dist)
    towards = (targets[np.where(found, idx, 0)] - ends[:, None]) / np.where(found, dist, 1.0)[..., None]
    count = found.sum(axis=1, keepdims=True)
    return np.where(count > 0, (towards * found[..., None]).sum(axis=1) / np.maximum(count, 1), 0.0)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def hepatic_roots(chest: body.Chest, cava_lps: np.ndarray, cava_radius_mm: float) -> list:
    """Where the hepatic veins leave the inferior vena cava: the roots (``VesselTree.grow``) of the right,
    middle and left hepatic veins, on the cava's wall :data:`HEPATIC_DEPTH_MM` below where its axis first
    runs into the liver (none where it never does), heading down and out through the liver.

    Parameters
    ----------
    cava_lps : (2, 3) float array
        The inferior vena cava's axis, from the right atrium downwards (mm).
    cava_radius_mm : float
    """
    top, bottom = np.asarray(cava_lps, float)
    steps = np.linspace(0.0, 1.0, 61)[:, None]
    axis = top + steps * (bottom - top)
    in_liver = np.flatnonzero(chest.labels(axis) == body.LIVER)
    if not len(in_liver):
        return []
    down = _unit(bottom - top)
    point = axis[in_liver[0]] + HEPATIC_DEPTH_MM * down
    roots = []
    # right: to the right and a little forwards; middle: forwards; left: forwards and to the left; all downwards
    for direction in ((-1.0, -0.3, 0.0), (-0.3, -1.0, 0.0), (0.6, -1.0, 0.0)):
        d = np.asarray(direction)
        across = _unit(d - np.dot(d, down) * down)
        roots.append((point + cava_radius_mm * across, _unit(across + 0.8 * down), HEPATIC_RADIUS_MM))
    return roots
