"""Angles East of North: a source placed at a known position angle and separation lands where
astropy's WCS of a real legacypipe coadd says; lens and COSMOS orientations follow the same rule."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS

from dhs.inject import arcs
from dhs.physics.angles import angle_from_stamp, angle_to_stamp, tractor_shape_to_q_pa
from dhs.stages.settings import inject_settings

COADD = Path(__file__).resolve().parents[1] / "data" / "legacypipe_coadd_obiwan"
SIZE, PIX = 64, 0.262


def _cols(n: int, **over: np.ndarray) -> dict[str, np.ndarray]:
    base = {"task_id": np.array([f"{i:032x}" for i in range(n)]), "theta_e_arcsec": np.full(n, 1e-4),
            "lens_e": np.zeros(n), "lens_phi_rad": np.zeros(n), "shear": np.zeros(n),
            "shear_phi_rad": np.zeros(n), "src_x_arcsec": np.zeros(n), "src_y_arcsec": np.zeros(n),
            "src_phi_rad": np.zeros(n), "src_reff_arcsec": np.full(n, 0.4), "src_e": np.zeros(n),
            "src_mag_r": np.full(n, 20.0), "src_gr": np.zeros(n), "src_rz": np.zeros(n)}
    base.update(over)
    return base


def _render(compose, cols: dict, extra: tuple = ()) -> np.ndarray:
    s = inject_settings(compose(["stage=4c", "psf=gaussian", *extra]))
    n = len(cols["task_id"])
    arc, _ = arcs.render_rows(s, cols, np.arange(n), np.full((n, 1), 0.9), "r", SIZE, None,
                              np.full(n, -1))
    return arc[:, 0].astype(np.float64)


def _centroid(img: np.ndarray) -> tuple[float, float]:
    yy, xx = np.indices(img.shape)
    return float((img * xx).sum() / img.sum()), float((img * yy).sum() / img.sum())


@pytest.mark.parametrize("pa_deg", [0.0, 30.0, 90.0, 200.0, 315.0])
def test_source_offset_lands_where_the_real_wcs_says(compose, pa_deg):
    """The lens sits on pixel (N//2, N//2) of a stamp cut from the real coadd at pixel (x0, y0);
    a source 3 arcsec away at position angle PA must appear at wcs.world_to_pixel(offset)."""
    wcs = WCS(fits.getheader(COADD / "legacysurvey-1102p240-image-z.fits.fz", 1))
    x0, y0 = 40.0, 57.0
    centre = wcs.pixel_to_world(x0, y0)
    sep = 3.0
    target = centre.directional_offset_by(pa_deg * u.deg, sep * u.arcsec)
    tx, ty = wcs.world_to_pixel(target)
    pa = np.deg2rad(pa_deg)
    img = _render(compose, _cols(1, src_x_arcsec=np.array([sep * np.sin(pa)]),
                                 src_y_arcsec=np.array([sep * np.cos(pa)])))[0]
    cx, cy = _centroid(img)
    # stamp pixel (N//2, N//2) is coadd pixel (x0, y0)
    assert cx - SIZE // 2 == pytest.approx(float(tx) - x0, abs=0.03)
    assert cy - SIZE // 2 == pytest.approx(float(ty) - y0, abs=0.03)
    # and the WCS position of the centroid has the asked position angle and separation
    got = wcs.pixel_to_world(x0 + cx - SIZE // 2, y0 + cy - SIZE // 2)
    assert centre.position_angle(got).to_value(u.deg) % 360 == pytest.approx(pa_deg % 360, abs=0.5)
    assert centre.separation(got).to_value(u.arcsec) == pytest.approx(sep, abs=0.01)


def _major_axis_pa(img: np.ndarray) -> float:
    """Position angle (deg East of North, [0, 180)) of an image's major axis, from its second
    moments in a north-up, East-left stamp."""
    yy, xx = np.indices(img.shape)
    cx, cy = _centroid(img)
    dx, dy = xx - cx, yy - cy
    w = img / img.sum()
    mxx, myy, mxy = (w * dx * dx).sum(), (w * dy * dy).sum(), (w * dx * dy).sum()
    theta_x = 0.5 * np.arctan2(2 * mxy, mxx - myy)  # from +x (West), counter-clockwise
    return float(np.rad2deg(angle_from_stamp(theta_x)) % 180.0)


@pytest.mark.parametrize("pa_deg", [10.0, 60.0, 135.0])
def test_source_position_angle_is_east_of_north(compose, pa_deg):
    img = _render(compose, _cols(1, src_phi_rad=np.array([np.deg2rad(pa_deg)]), src_e=np.array([0.5]),
                                 src_reff_arcsec=np.array([1.0])))[0]
    assert _major_axis_pa(img) == pytest.approx(pa_deg, abs=1.0)


def test_tractor_shape_gives_the_position_angle_east_of_north():
    """Tractor EllipseE: the major axis points along (East, North) = (sin PA, cos PA) with
    PA = atan2(e2, e1) / 2; e = (1 - q) / (1 + q)."""
    q, pa = tractor_shape_to_q_pa(np.array([0.2, 0.0, -0.2]), np.array([0.0, 0.2, 0.0]))
    assert np.allclose(q, 0.8 / 1.2)
    assert np.allclose(np.rad2deg(pa), [0.0, 45.0, 90.0])
    assert angle_to_stamp(0.0) == pytest.approx(np.pi / 2)


def test_cosmos_orientation_is_a_pure_function_of_task_and_salt():
    ids = [hashlib.blake2b(str(i).encode(), digest_size=16).hexdigest() for i in range(4000)]
    rot, flip = arcs.cosmos_orientation(ids, "s")
    rot2, flip2 = arcs.cosmos_orientation(ids[::-1], "s")
    assert np.array_equal(rot, rot2[::-1]) and np.array_equal(flip, flip2[::-1])
    assert rot.min() >= 0 and rot.max() < 2 * np.pi
    # the whole circle, not half of it; both parities
    assert np.histogram(rot, bins=8, range=(0, 2 * np.pi))[0].min() > 400
    assert 0.45 < flip.mean() < 0.55
    other, _ = arcs.cosmos_orientation(ids, "t")
    assert not np.allclose(rot, other)
