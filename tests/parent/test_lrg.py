"""The DESI LRG selection on hand-computed rows just inside and just outside every cut.

Each row is built from MW-corrected magnitudes chosen so that only the cut under test is close to
its threshold (the margins of the other cuts are worked out in the comments); DELTA = 1e-6 mag.
"""

from __future__ import annotations

import numpy as np
import pytest

from dhs.parent import lrg

DELTA = 1e-6
R_EXT = {"g": 3.214, "r": 2.165, "z": 1.211, "w1": 0.184}


def flux(mag: float) -> float:
    return 10.0 ** (-0.4 * (mag - 22.5))


def row(g: float, r: float, z: float, w1: float, zfib: float, ebv: float = 0.0, **over) -> dict:
    """One catalog row from MW-corrected magnitudes (fluxes dimmed by ``ebv``) passing quality."""
    t = {b: 10.0 ** (-0.4 * R_EXT[b] * ebv) for b in R_EXT}
    cat = {f"flux_{b}": flux(m) * t[b] for b, m in (("g", g), ("r", r), ("z", z), ("w1", w1))}
    cat.update({f"mw_transmission_{b}": t[b] for b in R_EXT})
    cat.update(flux_ivar_r=10.0, flux_ivar_z=10.0, flux_ivar_w1=1.0, fiberflux_z=flux(zfib) * t["z"],
               fibertotflux_z=flux(zfib) * t["z"], nobs_g=2, nobs_r=2, nobs_z=3,
               gaia_phot_g_mean_mag=0.0, maskbits=0)
    cat.update(over)
    return {k: np.atleast_1d(np.asarray(v)) for k, v in cat.items()}


def desi(cat: dict, footprint: str = "south") -> bool:
    return bool(lrg.select(cat, footprint).flags[lrg.DESI_FLAG][0])


# (name, passing row, failing row); comments give the binding cut and the other margins
BOUNDARIES = [
    # faint limit z_fib < 21.6; nonstellar 1.0 > 0.6, low-z g-W1 4.5, sliding 2.5 > 2.448 and > 2.17
    ("z_fib < 21.6", row(23.0, 21.0, 19.5, 18.5, 21.6 - DELTA), row(23.0, 21.0, 19.5, 18.5, 21.6 + DELTA)),
    # non-stellar z - W1 > 0.8 (r - z) - 0.6 = 1.4 (r - z = 2.5): W1 = 17.6; r - W1 = 3.9 > 3.3
    ("non-stellar", row(23.5, 21.5, 19.0, 17.6 - DELTA, 20.0), row(23.5, 21.5, 19.0, 17.6 + DELTA, 20.0)),
    # low-z through g: g - W1 > 2.9 with r - W1 = 1.5 < 1.8; sliding 1.5 > W1 - 16.33 = 0.67
    ("low-z g - W1 > 2.9", row(19.9 + DELTA, 18.5, 17.8, 17.0, 19.0), row(19.9 - DELTA, 18.5, 17.8, 17.0, 19.0)),
    # low-z through r: r - W1 > 1.8 with g - W1 = 2.5; nonstellar 0.8 > 0.2
    ("low-z r - W1 > 1.8", row(19.5, 18.8 + DELTA, 17.8, 17.0, 19.0), row(19.5, 18.8 - DELTA, 17.8, 17.0, 19.0)),
    # sliding, first branch binding (W1 = 18.5 > 18.1525): r - W1 > 1.8 (W1 - 17.14) = 2.448
    ("sliding 1.8 (W1 - 17.14)", row(23.0, 20.948 + DELTA, 19.4, 18.5, 20.5),
     row(23.0, 20.948 - DELTA, 19.4, 18.5, 20.5)),
    # sliding, second branch binding (W1 = 17.5): r - W1 > W1 - 16.33 = 1.17; g - W1 = 3.5
    ("sliding W1 - 16.33", row(21.0, 18.67 + DELTA, 18.2, 17.5, 19.5), row(21.0, 18.67 - DELTA, 18.2, 17.5, 19.5)),
    # high-z extension: r - W1 > 3.3 while the sliding cut wants 3.348 (W1 = 19); nonstellar 1.3 > 1.0
    ("high-z r - W1 > 3.3", row(24.0, 22.3 + DELTA, 20.3, 19.0, 21.0), row(24.0, 22.3 - DELTA, 20.3, 19.0, 21.0)),
]


@pytest.mark.parametrize("name,inside,outside", BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_colour_cut_boundaries(name, inside, outside):
    assert desi(inside), f"{name}: the row just inside the cut must pass"
    assert not desi(outside), f"{name}: the row just outside the cut must fail"


BASE = (23.0, 21.0, 19.5, 18.5, 20.5)  # passes every cut with margins >= 0.05 mag


@pytest.mark.parametrize("over,passes", [
    ({"gaia_phot_g_mean_mag": 0.0}, True),            # no Gaia match
    ({"gaia_phot_g_mean_mag": 18.0}, False),          # G > 18 is strict
    ({"gaia_phot_g_mean_mag": 18.0001}, True),
    ({"gaia_phot_g_mean_mag": 17.0}, False),
    ({"gaia_phot_g_mean_mag": np.nan}, False),
    ({"fibertotflux_z": 100.0}, False),               # z_fibtot = 17.5 exactly
    ({"fibertotflux_z": 99.999}, True),
    ({"flux_ivar_w1": 0.0}, False),
    ({"flux_ivar_r": 0.0}, False),
    ({"flux_ivar_z": -1.0}, False),
    ({"flux_r": 0.0}, False),
    ({"fiberflux_z": 0.0}, False),
    ({"nobs_g": 0}, False),
    ({"nobs_z": 0}, False),
    ({"maskbits": 1 << 1}, False),                    # BRIGHT
    ({"maskbits": 1 << 12}, False),                   # GALAXY
    ({"maskbits": 1 << 13}, False),                   # CLUSTER
    ({"maskbits": (1 << 11) | (1 << 0) | (1 << 8)}, True),  # MEDIUM, NPRIMARY, WISEM1: not LRG mask bits
    ({"brick_primary": False}, False),
    ({"brick_primary": True}, True),
])
def test_quality_cuts(over, passes):
    cat = row(*BASE, **over)
    sel = lrg.select(cat)
    assert bool(sel.quality[0]) is passes
    assert desi(cat) is passes
    assert bool(sel.flags["is_v3_color_relaxed"][0]) is passes  # variants carry the quality cuts too


def test_magnitudes_are_corrected_for_milky_way_extinction():
    # observed z fibre magnitude 21.6 + 0.1 - R_z * 0.1 < 21.6 only after the correction
    ebv = 0.1
    cat = row(23.0, 21.0, 19.5, 18.5, 21.6 - 0.5 * R_EXT["z"] * ebv, ebv=ebv)
    assert np.isclose(lrg.mw_mags(cat)["zfib"][0], 21.6 - 0.5 * R_EXT["z"] * ebv)
    observed_zfib = 22.5 - 2.5 * np.log10(cat["fiberflux_z"][0])
    assert observed_zfib > 21.6
    assert desi(cat)


def test_undetected_g_is_clipped_like_desitarget():
    # flux_g <= 0: g = 22.5 - 2.5 log10(1e-7) = 40, so g - W1 > 2.9 holds (r - W1 = 1.5 < 1.8)
    cat = row(19.0, 18.5, 17.8, 17.0, 19.0, flux_g=-3.0)
    assert lrg.mw_mags(cat)["g"][0] == pytest.approx(40.0)
    assert desi(cat)


def test_north_constants():
    cat = row(23.0, 21.1, 19.5, 18.5, 21.605)  # north sliding cut: 2.6 > 1.83 (18.5 - 17.13) = 2.507
    assert not desi(cat, "south") and desi(cat, "north")


@pytest.mark.parametrize("flag,zmax,rzmin,zw1min", [(k, *v) for k, v in lrg.VARIANT_CUTS.items()])
def test_variant_boundaries(flag, zmax, rzmin, zw1min):
    def v(z, rz, zw1):
        return bool(lrg.select(row(z + rz + 1.5, z + rz, z, z - zw1, 21.0)).flags[flag][0])

    z, rz, zw1 = zmax - 0.3, rzmin + 0.3, zw1min + 0.3
    assert v(z, rz, zw1)
    assert v(zmax - DELTA, rz, zw1) and not v(zmax + DELTA, rz, zw1)
    assert v(z, rzmin + DELTA, zw1) and not v(z, rzmin - DELTA, zw1)
    assert v(z, rz, zw1min + DELTA) and not v(z, rz, zw1min - DELTA)


def test_funnel_counts_and_keep():
    rows = [row(*BASE), row(*BASE, nobs_r=0), row(23.0, 21.0, 19.5, 18.5, 22.0),
            row(19.0, 18.5, 18.4, 18.6, 19.0)]  # a blue, star-like row: no flag at all
    cat = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
    sel = lrg.select(cat)
    steps = dict(sel.funnel)
    assert steps["catalog rows"] == 4
    assert steps["NOBS_G, NOBS_R, NOBS_Z > 0"] == 3
    assert steps["DESI LRG: z_fib < 21.6"] == 2
    assert sel.flags[lrg.DESI_FLAG].tolist() == [True, False, False, False]
    # the faint-fibre row is still a v-variant galaxy (z = 19.5 < 20.4): kept in the parent sample
    assert sel.keep.tolist() == [True, False, True, False]
