"""Stage 4c on the embedded survey: stamps, controls, flux, SNR, provenance columns."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from dhs import schema
from dhs.stages import layout
from dhs.io import datasets as dio
from dhs.cosmos.bank import load_bank
from dhs.physics.photometry import mag_to_nmgy
from dhs.survey import maskbits as mb
from tests.helpers import compose_config
from tests.helpers import run_stage


def _arrays(table, name, nb, size):
    flat = np.asarray(pc.list_flatten(table.column(name)).to_numpy(zero_copy_only=False))
    return flat.reshape(table.num_rows, -1, size, size) if name != "maskbits" else flat.reshape(-1, size, size)


@pytest.fixture(scope="module")
def cosmos_run(mini_base):
    """4c with COSMOS sources and the arcs saved."""
    over = [*mini_base, "stage=4c", "source=cosmos", "output.save_arc=true", "inject.run_name=cosmos_test"]
    run_stage(over)
    cfg = compose_config(over)
    exp = layout.experiment_ids(cfg)[0]
    manifest = dio.read_dataset(layout.manifest_dir(cfg, exp))
    metrics = dio.read_dataset(layout.metrics_dir(cfg, exp))
    stamps = dio.read_dataset(layout.stamps_dir(cfg, exp))
    return cfg, manifest, metrics, stamps


def test_every_manifest_column_is_carried_and_schema_matches(cosmos_run):
    cfg, manifest, metrics, stamps = cosmos_run
    names = set(metrics.column_names)
    assert set(schema.names(schema.MANIFEST)) <= names
    assert set(schema.names(schema.metrics_columns(cfg.bands))) <= names
    assert metrics.num_rows == manifest.num_rows == stamps.num_rows
    assert sorted(metrics.column("task_id").to_pylist()) == sorted(manifest.column("task_id").to_pylist())
    assert len(set(metrics.column("task_id").to_pylist())) == metrics.num_rows
    m = metrics.to_pandas().set_index("task_id")
    man = manifest.to_pandas().set_index("task_id").loc[m.index]
    for col in ("theta_e_arcsec", "src_x_arcsec", "src_mag_r", "ra", "psfsize_r"):
        np.testing.assert_array_equal(m[col].to_numpy(), man[col].to_numpy())


def test_stamp_minus_cutout_minus_arc_is_photon_noise_of_the_stated_gain(cosmos_run):
    """stamp - cutout - arc is the arc's photon noise: exactly 0 where there is no arc, variance
    arc / gain (the recorded arc_gain_<band>) within 5 %; invvar = 1 / (1 / invvar_cut + arc / gain)."""
    cfg, manifest, metrics, stamps = cosmos_run
    size = 64
    img, arc = _arrays(stamps, "image", 3, size), _arrays(stamps, "arc", 3, size)
    inv = _arrays(stamps, "invvar", 3, size)
    from dhs.inject.cutouts import cut_brick
    from dhs.stages.settings import inject_settings

    t = stamps.to_pandas()
    met = metrics.to_pandas().set_index("task_id").loc[t["task_id"]]
    assert (met["photon_noise"] == 1).all()
    num = {b: 0.0 for b in "grz"}
    den = {b: 0.0 for b in "grz"}
    for brick in t["brickname"].unique():
        rows = np.flatnonzero(t["brickname"].to_numpy() == brick)
        cut = cut_brick(inject_settings(cfg), brick, met["ra"].to_numpy()[rows], met["dec"].to_numpy()[rows],
                        "grz", size)
        ok = (cut.error == "") & (met["is_control"].to_numpy()[rows] == 0)
        resid = img[rows][ok].astype(np.float64) - cut.image[ok] - arc[rows][ok]
        a = arc[rows][ok].astype(np.float64)
        assert np.abs(resid[a <= 0]).max() < 1e-6
        for j, b in enumerate("grz"):
            g = met[f"arc_gain_{b}"].to_numpy()[rows][ok]
            assert np.isfinite(g).all() and (g > 100).all()
            num[b] += (resid[:, j] ** 2).sum()
            den[b] += (np.clip(a[:, j], 0, None) / g[:, None, None]).sum()
            iv = 1.0 / (1.0 / np.where(cut.invvar[ok][:, j] > 0, cut.invvar[ok][:, j], np.inf)
                        + np.clip(a[:, j], 0, None) / g[:, None, None])
            np.testing.assert_allclose(inv[rows][ok][:, j], np.where(cut.invvar[ok][:, j] > 0, iv, 0),
                                       rtol=1e-5)
    for b in "grz":
        assert den[b] > 0 and num[b] / den[b] == pytest.approx(1.0, abs=0.05), b


def test_cosmos_hlr_is_the_bank_value_not_the_lensed_arc(cosmos_run):
    cfg, _, metrics, _ = cosmos_run
    bank = load_bank(str(cfg.source.bank_path))
    m = metrics.to_pandas()
    inj = m[(m.is_control == 0) & (m.cutout_ok == 1)]
    assert (inj.source_mode == "cosmos").all()
    assert inj.cosmos_index.between(0, len(bank) - 1).all()
    np.testing.assert_allclose(inj.cosmos_hlr_arcsec, np.asarray(bank.hlr_arcsec)[inj.cosmos_index])
    assert not np.allclose(inj.cosmos_hlr_arcsec, inj.lensed_hlr_arcsec)


def test_injected_flux_matches_the_lensed_flux_the_1111x_trap(cosmos_run):
    """Arc flux in the stamp = intrinsic flux x magnification (1 %), in every band."""
    _, _, metrics, stamps = cosmos_run
    m = metrics.to_pandas()
    sel = m[(m.is_control == 0) & (m.cutout_ok == 1) & (m.theta_e_arcsec >= 0.6)]
    assert len(sel) >= 5
    mag = {"r": sel.src_mag_r, "g": sel.src_mag_r + sel.src_gr, "z": sel.src_mag_r - sel.src_rz}
    for b in "grz":
        expected = mag_to_nmgy(mag[b].to_numpy()) * sel.magnification.to_numpy()
        np.testing.assert_allclose(sel[f"injected_flux_{b}"].to_numpy(), expected, rtol=0.01)
    arc = _arrays(stamps, "arc", 3, 64)
    total_r = dict(zip(stamps.column("task_id").to_pylist(), arc[:, 1].sum(axis=(1, 2), dtype=np.float64)))
    np.testing.assert_allclose([total_r[t] for t in sel.task_id], sel.injected_flux_r, rtol=1e-5)


def test_arc_snr_equals_a_hand_computation(cosmos_run):
    _, _, metrics, stamps = cosmos_run
    m = metrics.to_pandas().set_index("task_id")
    t = stamps.to_pandas()
    arc, inv = _arrays(stamps, "arc", 3, 64)[:, 1], _arrays(stamps, "invvar", 3, 64)[:, 1]
    bits = _arrays(stamps, "maskbits", 1, 64)
    k = int(np.argmax(m.loc[t.task_id, "arc_snr"].fillna(-1).to_numpy()))
    a, iv, mbits = arc[k].astype(float), inv[k].astype(float), bits[k]
    good = (iv > 0) & ((mbits & mb.BAD_R) == 0)
    sel = good & (a > 0.1 * a[good].max())
    # the stored invvar holds the sky's variance and the arc's photon variance
    by_hand = a[sel].sum() / np.sqrt((1.0 / iv[sel]).sum())
    row = m.loc[t.task_id.iloc[k]]
    assert row.arc_snr_white > 10
    assert row.arc_snr_white == pytest.approx(by_hand, rel=1e-5)
    # the mock survey's noise is white: the correlated-noise arc_snr agrees to the estimate's noise
    assert row.arc_noise_corr == pytest.approx(1.0, abs=0.15)
    assert row.arc_snr == pytest.approx(row.arc_snr_white / row.arc_noise_corr, rel=0.05)
    # the per-pixel peak uses the sky's invvar: the stored one less the arc's photon variance
    iv_sky = 1.0 / (1.0 / np.where(good, iv, np.inf) - np.clip(a, 0, None) / row.arc_gain_r)
    assert row.arc_snr_max == pytest.approx((a * np.sqrt(iv_sky))[good].max(), rel=1e-4)
    assert (a * np.sqrt(iv))[good].max() <= row.arc_snr_max


def test_psf_from_maps_and_recorded_per_band(cosmos_run):
    _, _, metrics, _ = cosmos_run
    m = metrics.to_pandas()
    ok = m[m.cutout_ok == 1]
    for b in "grz":
        assert (ok[f"psf_source_{b}"] == "map").all()
        assert ok[f"psf_fwhm_used_{b}"].between(0.7, 2.2).all()
    assert (ok.psf_fwhm_used_g > ok.psf_fwhm_used_z).mean() > 0.9
    assert (m.psf_model == "moffat").all() and (m.moffat_beta == 3.5).all()

