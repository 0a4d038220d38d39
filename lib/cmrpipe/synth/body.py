"""The static chest around the heart, in the patient frame (LPS, mm).

An elliptic body cylinder along the head-foot axis with a subcutaneous fat rim,
two lungs, a liver below the right hemidiaphragm, the spine with the descending
aorta beside it, and a pericardial sac around the heart. It does not move with the cardiac cycle; breath-hold
misregistration moves it with the heart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AIR, SOFT_TISSUE, SUBCUT_FAT, LUNG, LIVER, SPINE, PERICARDIAL, AORTA = range(8)
BODY_LABELS = {"air": AIR, "soft_tissue": SOFT_TISSUE, "subcut_fat": SUBCUT_FAT, "lung": LUNG, "liver": LIVER,
               "spine": SPINE, "pericardial": PERICARDIAL, "aorta": AORTA}


@dataclass(frozen=True)
class Chest:
    """Sizes and positions of the chest's parts (mm, LPS); ``heart_centre_lps`` places the pericardium."""

    half_width_mm: float
    half_depth_mm: float
    fat_mm: float
    diaphragm_z_mm: float
    heart_centre_lps: tuple[float, float, float]
    pericardium_radius_mm: float

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
        p = np.asarray(points_lps, float)
        x, y, z = p[..., 0], p[..., 1], p[..., 2]
        out = np.zeros(x.shape, np.uint8)
        r = np.sqrt((x / self.half_width_mm) ** 2 + (y / self.half_depth_mm) ** 2)
        out[r <= 1.0] = SUBCUT_FAT
        inner = 1.0 - self.fat_mm / self.half_depth_mm
        out[r <= inner] = SOFT_TISSUE
        hx, hy, hz = self.heart_centre_lps
        # lungs: either side of the mediastinum, above the diaphragm
        for side in (-1.0, 1.0):
            q = (((x - side * 0.5 * self.half_width_mm) / (0.38 * self.half_width_mm)) ** 2
                 + ((y - 0.05 * self.half_depth_mm) / (0.75 * self.half_depth_mm)) ** 2)
            out[(q <= 1.0) & (z > self.diaphragm_z_mm + 10.0 * (x * side > 0))] = LUNG
        # liver: under the right hemidiaphragm (right is -x in LPS)
        q = ((x + 0.25 * self.half_width_mm) / (0.7 * self.half_width_mm)) ** 2 + (y / (0.75 * self.half_depth_mm)) ** 2
        out[(q <= 1.0) & (z <= self.diaphragm_z_mm - 5.0 * np.clip(x / self.half_width_mm, -1, 1))] = LIVER
        # spine, posterior midline, and the descending aorta in front of it and to its left (+x)
        out[(x**2 + (y - 0.72 * self.half_depth_mm) ** 2) <= (0.15 * self.half_depth_mm) ** 2] = SPINE
        aorta = ((x - 0.13 * self.half_width_mm) ** 2 + (y - 0.50 * self.half_depth_mm) ** 2) <= 11.0**2
        out[aorta & (z > self.diaphragm_z_mm - 60.0)] = AORTA
        # pericardial sac (mediastinal tissue around the heart)
        d = np.sqrt((x - hx) ** 2 + (y - hy) ** 2 + ((z - hz) / 1.25) ** 2)
        out[d <= self.pericardium_radius_mm] = PERICARDIAL
        return out
