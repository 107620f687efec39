"""survey.source=cutout_service: stage 4b fetches one viewer cutout per target, 4c cuts from them.

A loopback server emulates the viewer's fits-cutout endpoint by cutting from the mock DR10 bricks
(target pixel at [W//2, W//2], zero outside the brick) and answering in the viewer's FITS layout,
with injected 503s, dropped connections, truncated bodies and 404s for some targets.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import warnings
from urllib.parse import parse_qs, urlparse

import numpy as np
import pyarrow.compute as pc
import pytest
from astropy.io import fits

from dhs.stages import layout
from dhs.fetch import cutout_service as cs
from dhs.io import datasets as dio
from dhs.survey.files import coadd_relpath
from dhs.survey.brickfile import open_brick_file
from dhs.survey.windows import cut_array
from dhs.survey.wcs import nearest_pixel
from tests import servers
from tests.helpers import compose_config
from dhs.errors import RunFailedError
from tests.helpers import run_stage

TINY = ["mock_survey.n_bricks=3", "mock_survey.brick_size_pix=260", "mock_survey.galaxies_per_brick=8",
        "mock_survey.n_regions=3"]
DEBUG = ["tier=debug", "tier.stamp_sizes=[64]", "tier.bandsets=[grz]", "tier.n_per_config=1",
         "tier.replicates=1", "manifest.selection_set_ids=[topk_density]"]
SIZE, BANDS = 64, "grz"


class _Viewer:
    """The mock survey's bricks in memory, cut like the viewer (bodies kept per request path)."""

    def __init__(self, coadd_root: str, bricks: list[str]):
        self.bricks = []
        for b in bricks:
            def read(kind: str, band: str | None = None, b: str = b):
                return open_brick_file(os.path.join(coadd_root, coadd_relpath(b, kind, band)),
                                       brick=b, kind=kind)
            ref = read("image", "r")
            planes = {(k, band): read(k, band).read() for k in ("image", "invvar") for band in "grz"}
            planes[("maskbits", None)] = read("maskbits").read()
            self.bricks.append((ref.wcs, ref.shape, planes))
        self.bodies: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.fault = ""  # "", "pixscale", "centre" or "image_only": a misbehaving service

    def body(self, ra: float, dec: float, width: int, bands: str) -> bytes | None:
        for wcs, (h, w), planes in self.bricks:
            with warnings.catch_warnings():  # positions far off a brick project to NaN there
                warnings.simplefilter("ignore", RuntimeWarning)
                ix, iy = (int(v) for v in nearest_pixel(wcs, ra, dec))
            if not (0 <= ix < w and 0 <= iy < h):
                continue
            img = np.stack([cut_array(planes[("image", b)], ix, iy, width).data for b in bands])
            ivar = np.stack([cut_array(planes[("invvar", b)], ix, iy, width).data for b in bands])
            mask = cut_array(planes[("maskbits", None)], ix, iy, width).data.astype(np.int32)
            hdr = fits.Header()
            hdr["BANDS"] = bands
            for j, b in enumerate(bands):
                hdr[f"BAND{j}"] = b
            hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN", "DEC--TAN"
            hdr["CRVAL1"], hdr["CRVAL2"] = ra, dec
            hdr["CRPIX1"] = hdr["CRPIX2"] = (width + 1) / 2
            hdr["CD1_1"], hdr["CD2_2"], hdr["CD1_2"], hdr["CD2_1"] = -0.262 / 3600, 0.262 / 3600, 0.0, 0.0
            if self.fault == "pixscale":  # a cutout resampled to 0.5 arcsec/pixel
                hdr["CD1_1"], hdr["CD2_2"] = -0.5 / 3600, 0.5 / 3600
            elif self.fault == "centre":  # centred 3 pixels north of the target
                hdr["CRVAL2"] = dec + 3 * 0.262 / 3600
            hdus = [fits.PrimaryHDU(img.astype(np.float32), header=hdr),
                    fits.ImageHDU(ivar.astype(np.float32), header=hdr.copy()),
                    fits.ImageHDU(mask, header=hdr.copy())]
            buf = io.BytesIO()
            fits.HDUList(hdus[:1] if self.fault == "image_only" else hdus).writeto(buf)
            return buf.getvalue()
        return None


class _ViewerHandler(servers._Handler):
    """fits-cutout answers from ``server.viewer``; faults as in tests/servers.py."""

    def _answer(self, head: bool) -> None:
        url = urlparse(self.path)
        q = parse_qs(url.query, keep_blank_values=True)
        if url.path != "/viewer/fits-cutout" or "invvar" not in q or "maskbits" not in q:
            return self._empty(400)
        if any(m in self.path for m in self.state.faults.missing):
            return self._empty(404)
        fault = self._fault("")
        if fault == "503":
            return self._empty(503, fault)
        viewer: _Viewer = self.server.viewer  # type: ignore[attr-defined]
        assert q["layer"] == ["ls-dr10-south"] and q["pixscale"] == ["0.262"]
        body = viewer.body(float(q["ra"][0]), float(q["dec"][0]), int(q["size"][0]), q["bands"][0])
        if body is None:
            return self._empty(404)
        with viewer.lock:
            viewer.bodies[self.path] = body
        announced = len(body)
        if fault == "truncate":
            body = body[: len(body) * 3 // 5]
            announced = len(body)
        self.send_response(200)
        self.send_header("Content-Type", "image/fits")
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        if fault == "drop":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return self._record(200, len(body) // 2, fault)
        self.wfile.write(body)
        self._record(200, len(body), fault)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    root = tmp_path_factory.mktemp("cutsvc")
    base = [f"paths.data_root={root}", *TINY, *DEBUG, "cluster.n_jobs=1"]
    run_stage(["stage=mock_survey", *base])
    run_stage(["stage=4a", *base])
    cfg = compose_config(["stage=4b", *base])
    exp = layout.experiment_ids(cfg)[0]
    manifest = dio.read_dataset(layout.manifest_dir(cfg, exp))
    bricks = sorted(set(manifest.column("brickname").to_pylist()))
    targets = cs.targets_of(manifest.column("ra").to_pylist(), manifest.column("dec").to_pylist(),
                            manifest.column("stamp_size").to_pylist(), manifest.column("bandset").to_pylist())
    gone = targets[1::max(len(targets) // 2, 1)][:2]  # two targets the service does not have
    server = servers.ThreadingHTTPServer(("127.0.0.1", 0), _ViewerHandler)
    server.daemon_threads = True
    faults = servers.Faults(p_503=0.3, p_drop=0.1, p_truncate=0.2, faulty_attempts=2, salt="cut",
                            missing=tuple(f"ra={t.ra!r}&dec={t.dec!r}&" for t in gone))
    server.dhs_state = servers._State(str(root), faults)  # type: ignore[attr-defined]
    server.viewer = _Viewer(layout.mock_survey_coadd(cfg), bricks)  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    srv = servers.HttpServer(f"http://127.0.0.1:{server.server_address[1]}", server,
                             server.dhs_state)  # type: ignore[attr-defined]
    cut = [*base, "survey.source=cutout_service", f"survey.cutout_url={srv.url}/viewer/fits-cutout",
           "cache.mode=brick", "cache.threads=4", "cache.retries=4", "cache.backoff_s=0.01",
           "survey.cutout_psf=manifest"]
    first = run_stage(["stage=4b", *cut])
    log = srv.requests()
    srv.reset()
    second = run_stage(["stage=4b", *cut])
    rerun_log = srv.requests()
    yield {"root": root, "base": base, "cut": cut, "cfg": compose_config(["stage=4b", *cut]), "exp": exp,
           "manifest": manifest, "targets": targets, "gone": gone, "first": first, "log": log,
           "second": second, "rerun_log": rerun_log, "viewer": server.viewer,  # type: ignore[attr-defined]
           "srv": srv}
    server.shutdown()
    server.server_close()


def test_4b_caches_every_cutout_byte_identical_and_records_404s(campaign):
    cfg, first, viewer = campaign["cfg"], campaign["first"], campaign["viewer"]
    targets, gone = campaign["targets"], campaign["gone"]
    assert len(gone) == 2 and len(targets) > 4
    assert first["fetched"] == len(targets) - 2 and first["missing"] == 2 and first["failed"] == 0
    faults = {f for *_, f in campaign["log"]}
    assert {"503", "truncate", "drop"} <= faults and first["retries"] > 0
    root, layer = layout.cache_root(cfg), "ls-dr10-south"
    index = cs.read_index(root)
    for t in targets:
        key = cs.target_key(t, layer, 0.262)
        path = cs.cutout_uri(root, key)
        if t in gone:
            assert not os.path.exists(path)
            continue
        url = urlparse(cs.cutout_url(cfg.survey.cutout_url, t, layer, 0.262))
        sent = viewer.bodies[f"{url.path}?{url.query}"]
        with open(path, "rb") as fh:
            assert fh.read() == sent
        assert index[key]["bytes"] == len(sent) and index[key]["width"] == SIZE + 1
    missing = cs.read_missing(root)
    assert set(missing) == {cs.target_key(t, layer, 0.262) for t in gone}
    assert all(r["status"] == "404" for r in missing.values())
    assert not [f for f in os.listdir(cs.cutout_dir(root)) if f.startswith(".dhs-tmp-")]


def test_4b_rerun_transfers_nothing(campaign):
    second, n = campaign["second"], len(campaign["targets"])
    assert campaign["rerun_log"] == []
    assert second["skipped_complete"] == n - 2 and second["skipped_missing"] == 2
    assert second["fetched"] == second["bytes_transferred"] == 0


def test_a_bad_answer_is_rejected_with_its_name(campaign, tmp_path):
    t = campaign["targets"][0]
    path = cs.cutout_uri(layout.cache_root(campaign["cfg"]), cs.target_key(t, "ls-dr10-south", 0.262))
    data = open(path, "rb").read()
    with pytest.raises(cs.IntegrityError, match="truncated"):
        cs.check_cutout_bytes(data[:5000], t, None, "x.fits")
    with pytest.raises(cs.WrongFileError, match="BANDS"):
        cs.check_cutout_bytes(data, cs.Target(t.ra, t.dec, t.size, "gr"), None, "x.fits")
    with pytest.raises(cs.WrongFileError, match="shape"):
        cs.check_cutout_bytes(data, cs.Target(t.ra, t.dec, 32, "grz"), None, "x.fits")


def _stamps(over: list[str], lost: bool = False):
    """Run 4c; with ``lost``, rows are expected to fail for good (404 targets: exit 3)."""
    if lost:
        with pytest.raises(RunFailedError, match=r"row\(s\) failed for good"):
            run_stage(over)
    else:
        run_stage(over)
    cfg = compose_config(over)
    exp = layout.experiment_ids(cfg)[0]
    met = dio.read_dataset(layout.metrics_dir(cfg, exp)).to_pandas().set_index("task_id")
    st = dio.read_dataset(layout.stamps_dir(cfg, exp))
    order = np.argsort(st.column("task_id").to_numpy(zero_copy_only=False))
    st = st.take(order)

    def arr(name: str) -> np.ndarray:
        flat = np.asarray(pc.list_flatten(st.column(name)).to_numpy(zero_copy_only=False))
        return flat.reshape(st.num_rows, -1, SIZE, SIZE)

    ids = st.column("task_id").to_numpy(zero_copy_only=False)
    return ids, met.loc[ids], {n: arr(n) for n in ("image", "invvar", "maskbits", "arc")}


def test_4c_from_cutouts_equals_the_brick_run(campaign):
    from dhs.inject.cutouts import cut_brick, cut_cutouts
    from dhs.stages.settings import inject_settings

    # the brick run reads a copy of the survey without psfsize maps, so both runs take the PSF
    # from the manifest, render the same arcs and must agree bit for bit
    coadd = layout.mock_survey_coadd(campaign["cfg"])
    no_maps = os.path.join(str(campaign["root"]), "coadd_without_psfsize")
    if not os.path.isdir(no_maps):
        shutil.copytree(coadd, no_maps, ignore=shutil.ignore_patterns("*psfsize*"))
    save = ["stage=4c", "output.save_arc=true"]
    ids_c, met_c, cut = _stamps([*campaign["cut"], *save, "inject.run_name=from_cutouts"], lost=True)
    ids_b, met_b, brk = _stamps([*campaign["base"], *save, "cache.mode=none", f"survey.base_url={no_maps}",
                                 "inject.run_name=from_bricks"])
    assert list(ids_c) == list(ids_b)
    man = campaign["manifest"].to_pandas().set_index("task_id").loc[ids_c]
    gone = {(t.ra, t.dec) for t in campaign["gone"]}
    lost = np.array([(r, d) in gone for r, d in zip(man["ra"], man["dec"])])
    assert lost.any() and (~lost).sum() > 4
    assert (met_c["error_code"].to_numpy()[lost] == "missing_file").all()
    ok = ~lost & (met_b["error_code"].to_numpy() == "")
    assert (met_c["error_code"].to_numpy()[ok] == "").all()
    for b in "grz":
        assert (met_c[f"psf_source_{b}"].to_numpy()[ok] == "manifest").all()
        assert (met_b[f"psf_source_{b}"].to_numpy()[ok] == "manifest").all()
    assert (np.abs(cut["arc"][ok]).sum(axis=(1, 2, 3)) > 0).sum() > 2  # arcs were injected
    for name in ("image", "invvar", "maskbits", "arc"):
        np.testing.assert_array_equal(cut[name][ok], brk[name][ok])
    np.testing.assert_array_equal((cut["image"] - cut["arc"])[ok], (brk["image"] - brk["arc"])[ok])
    np.testing.assert_array_equal(met_c["arc_snr"].to_numpy()[ok], met_b["arc_snr"].to_numpy()[ok])
    # the same pixels straight from the two readers, row by row
    cfg_c = inject_settings(compose_config(campaign["cut"]))
    cfg_b = inject_settings(compose_config([*campaign["base"], "cache.mode=none"]))
    for brick in man["brickname"].unique():
        rows = np.flatnonzero((man["brickname"].to_numpy() == brick) & ok)
        a = cut_cutouts(cfg_c, ids_c[rows], man["ra"].to_numpy()[rows], man["dec"].to_numpy()[rows], BANDS, SIZE)
        b = cut_brick(cfg_b, brick, man["ra"].to_numpy()[rows], man["dec"].to_numpy()[rows], BANDS, SIZE)
        assert (a.error == "").all() and np.isnan(a.psf_map).all()
        for name in ("image", "invvar", "maskbits"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("fault,card", [("pixscale", "CD1_1"), ("centre", "CRVAL")])
def test_4b_refuses_a_cutout_with_the_wrong_pixel_scale_or_centre(campaign, tmp_path, fault, card):
    viewer = campaign["viewer"]
    over = [*campaign["cut"], f"paths.cache_root={tmp_path / 'cache'}"]
    viewer.fault = fault
    try:
        with pytest.raises(RunFailedError, match=r"target\(s\) failed after the retries") as failed:
            run_stage(["stage=4b", *over])
    finally:
        viewer.fault = ""
    rep = failed.value.summary
    n = len(campaign["targets"]) - 2
    assert rep["fetched"] == 0 and rep["failed"] == n, rep
    reasons = " ".join(str(f) for f in rep["failures"])
    assert card in reasons and ("pixel" in reasons)
    assert cs.read_index(str(tmp_path / "cache")) == {}


def test_4c_refuses_cached_cutouts_per_row_and_records_the_psf_and_invvar_source(campaign, tmp_path):
    """Bad files already in a cache (an older run): wrong grid and image-only cutouts are refused
    row by row; with the sky opt-in an image-only cutout is used and says so; cutout_psf=map
    reads each target's FWHM from its brick's psfsize maps."""
    from dhs.inject.cutouts import cut_cutouts
    from dhs.stages.settings import inject_settings

    man = campaign["manifest"].to_pandas()
    cache = tmp_path / "cache"
    shutil.copytree(cs.cutout_dir(layout.cache_root(campaign["cfg"])), cs.cutout_dir(str(cache)))
    gone = {(t.ra, t.dec) for t in campaign["gone"]}
    rows = man[[(r, d) not in gone for r, d in zip(man.ra, man.dec)]]
    brick = rows.brickname.iloc[0]
    rows = rows[rows.brickname == brick]
    ra, dec, ids = rows.ra.to_numpy(), rows.dec.to_numpy(), rows.task_id.to_numpy()
    viewer = campaign["viewer"]

    def rewrite(k: int, fault: str) -> None:
        viewer.fault = fault
        try:
            body = viewer.body(float(ra[k]), float(dec[k]), cs.fetch_size(SIZE), BANDS)
        finally:
            viewer.fault = ""
        key = cs.target_key(cs.Target(float(ra[k]), float(dec[k]), SIZE, BANDS), "ls-dr10-south", 0.262)
        (cache / "cutouts" / f"{key}.fits").write_bytes(body)

    first = {}
    for k, pos in enumerate(zip(ra, dec)):
        first.setdefault(pos, k)
    assert len(first) >= 4
    faults = dict(zip(list(first)[:3], ("pixscale", "centre", "image_only")))
    for pos, fault in faults.items():
        rewrite(first[pos], fault)
    code = {"pixscale": "wrong_wcs", "centre": "wrong_wcs", "image_only": "no_invvar"}
    want = np.array([code.get(faults.get(pos, ""), "") for pos in zip(ra, dec)], dtype=object)
    base = [*campaign["cut"], f"paths.cache_root={cache}"]
    s = inject_settings(compose_config(base))
    got = cut_cutouts(s, ids, ra, dec, BANDS, SIZE, brick)
    assert list(got.error) == list(want)
    assert (got.invvar_source[want == ""] == "cutout").all()
    assert np.isnan(got.psf_map).all()  # cutout_psf=manifest
    notes = " ".join(got.notes)
    assert "CD1_1" in notes and "CRVAL" in notes and "cutout_sky_invvar" in notes
    s = inject_settings(compose_config([*base, "survey.cutout_psf=map", "survey.cutout_sky_invvar=true"]))
    got = cut_cutouts(s, ids, ra, dec, BANDS, SIZE, brick)
    k = first[list(first)[2]]
    assert got.error[k] == "" and got.invvar_source[k] == "sky_estimate"
    iv = got.invvar[k]
    true_iv = np.median(campaign["viewer"].bricks[0][2][("invvar", "r")])
    assert (iv[1] == iv[1, 0, 0]).all() and 0.3 < iv[1, 0, 0] / true_iv < 3  # the sky's, per band
    ok = got.error == ""
    assert np.isfinite(got.psf_map[ok]).all() and (got.psf_map[ok] > 0.5).all()
    # the FWHM is the brick's psfsize map at each target
    coadd = layout.mock_survey_coadd(campaign["cfg"])
    psf = open_brick_file(os.path.join(coadd, coadd_relpath(brick, "psfsize", "r")), brick=brick, kind="psfsize")
    ix, iy = nearest_pixel(psf.wcs, ra[ok], dec[ok])
    np.testing.assert_allclose(got.psf_map[ok, 1], psf.read()[np.asarray(iy, int), np.asarray(ix, int)])


def test_sky_invvar_matches_the_noise_of_a_sky_image():
    from dhs.fetch.cutout_checks import sky_invvar

    rng = np.random.default_rng(5)
    img = rng.normal(0.0, [[[0.01]], [[0.02]]], size=(2, 65, 65))
    img[:, 30:35, 30:35] += 5.0  # a bright object the clipping must ignore
    iv, sig = sky_invvar(img)
    np.testing.assert_allclose(sig, [0.01, 0.02], rtol=0.06)
    np.testing.assert_allclose(iv[:, 0, 0], 1 / np.array([0.01, 0.02]) ** 2, rtol=0.12)
