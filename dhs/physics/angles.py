"""Sky angles (East of North) to the renderer's stamp frame: the one place they are converted.

Manifest and metrics columns use the astronomical convention: position angles are measured from
North through East, in radians; source offsets are (East, North) in arcsec. Stamps are cut from
north-up TAN images with CD1_1 < 0 (``dhs.survey.wcs``, legacypipe), so array columns (+x) run
West and rows (+y) run North. The renderer (``dhs.physics``) measures angles counter-clockwise
from +x. Hence

    x_stamp = -east,  y_stamp = north,  angle_stamp = angle_east_of_north + pi / 2.
"""

from __future__ import annotations

import numpy as np


def offsets_to_stamp(east: np.ndarray, north: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) stamp-frame offsets (arcsec) of (East, North) sky offsets (arcsec)."""
    return -np.asarray(east, dtype=np.float64), np.asarray(north, dtype=np.float64)


def angle_to_stamp(angle_eon: np.ndarray) -> np.ndarray:
    """Renderer angle (rad, counter-clockwise from +x) of a sky angle (rad, East of North)."""
    return np.asarray(angle_eon, dtype=np.float64) + 0.5 * np.pi


def angle_from_stamp(angle_stamp: np.ndarray) -> np.ndarray:
    """Sky angle (rad, East of North, in [0, 2 pi)) of a renderer angle (rad, from +x)."""
    return np.mod(np.asarray(angle_stamp, dtype=np.float64) - 0.5 * np.pi, 2.0 * np.pi)


def tractor_shape_to_q_pa(e1: np.ndarray, e2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(axis ratio b/a, major-axis position angle East of North in [0, pi)) of Tractor
    SHAPE_E1/SHAPE_E2: e = (1 - q)/(1 + q), PA = atan2(e2, e1)/2 (tractor ``EllipseE``: the
    major axis points along (East, North) = (sin PA, cos PA))."""
    e1 = np.asarray(e1, dtype=np.float64)
    e2 = np.asarray(e2, dtype=np.float64)
    e = np.minimum(np.hypot(e1, e2), 0.999)
    return (1.0 - e) / (1.0 + e), np.mod(0.5 * np.arctan2(e2, e1), np.pi)
