"""The earlier system's stage-4c loop, rebuilt for benchmarks as its design notes describe it.

Per brick (a Spark partition grouped by brick): every file read whole with astropy
(``hdul[1].data`` of image and invvar in each band, maskbits, psfsize), the WCS from the r image,
stamps cut from the arrays; per task and band a lenstronomy ``ImageModel`` (SIE + SHEAR, COSMOS
template through ``INTERPOL`` in surface-brightness units, a pixel Moffat PSF from the psfsize map
at the target) at supersampling 5; the arc added to the cutout; the per-pixel arc SNR; the stamp
stored as an ``np.savez_compressed`` blob (``stamp_npz``) in a Parquet table with its metrics.
It is the reference the dhs benchmarks measure against, not a part of dhs.

Usage (one process, as one executor core): ``python benchmarks/peer_loop.py SPEC.json`` where
the spec gives ``manifest`` (a Parquet file), ``base_url`` (the survey's coadd folder), ``bank``
and ``out``; prints ``PEER_JSON {...}`` with stamps and CPU seconds per part.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PIX, BANDS, SS = 0.262, "grz", 5


class Clock:
    """CPU seconds per named part (time.process_time)."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    def add(self, name: str, t0: float) -> float:
        t1 = time.process_time()
        self.parts[name] = self.parts.get(name, 0.0) + t1 - t0
        return t1


def _path(base: str, brick: str, kind: str, band: str | None) -> str:
    suffix = f"{kind}-{band}" if band else kind
    return f"{base}/{brick[:3]}/{brick}/legacysurvey-{brick}-{suffix}.fits.fz"


def read_brick(base: str, brick: str) -> dict:
    """Whole arrays of the brick's 10 files and the r-band WCS (astropy, as the earlier system)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    out: dict = {}
    for b in BANDS:
        for kind in ("image", "invvar", "psfsize"):
            with fits.open(_path(base, brick, kind, b)) as hdul:
                out[f"{kind}_{b}"] = np.array(hdul[1].data)
                if kind == "image" and b == "r":
                    out["wcs"] = WCS(hdul[1].header)
    with fits.open(_path(base, brick, "maskbits", None)) as hdul:
        out["maskbits"] = np.array(hdul[1].data)
    return out


def cosmos_index(task_id: str, n: int, salt: str = "") -> int:
    h = hashlib.blake2b(f"{task_id}{salt}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "little") % n


def render_band(row: dict, template: np.ndarray, tpl_pix: float, flux: float, fwhm: float,
                size: int) -> np.ndarray:
    """One band of one arc with a freshly built lenstronomy ImageModel (supersampling 5)."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    from dhs.physics.psf import psf_kernel
    from dhs.physics.render import stamp_center_offset

    cx, cy = stamp_center_offset(size, PIX)
    q = (1 - row["lens_e"]) / (1 + row["lens_e"])
    e = (1 - q) / (1 + q)
    kw_lens = [{"theta_E": row["theta_e_arcsec"], "e1": e * np.cos(2 * row["lens_phi_rad"]),
                "e2": e * np.sin(2 * row["lens_phi_rad"]), "center_x": cx, "center_y": cy},
               {"gamma1": row["shear"] * np.cos(2 * row["shear_phi_rad"]),
                "gamma2": row["shear"] * np.sin(2 * row["shear_phi_rad"]), "ra_0": cx, "dec_0": cy}]
    kw_src = [{"image": template / tpl_pix ** 2, "amp": flux / template.sum(), "scale": tpl_pix,
               "center_x": cx + row["src_x_arcsec"], "center_y": cy + row["src_y_arcsec"],
               "phi_G": row["src_phi_rad"]}]
    c0 = -0.5 * (size - 1) * PIX
    data = ImageData(image_data=np.zeros((size, size)), ra_at_xy_0=c0, dec_at_xy_0=c0,
                     transform_pix2angle=np.eye(2) * PIX)
    psf = PSF(psf_type="PIXEL", kernel_point_source=psf_kernel(fwhm, PIX, stamp_size=size))
    model = ImageModel(data, psf, lens_model_class=LensModel(["SIE", "SHEAR"]),
                       source_model_class=LightModel(["INTERPOL"]),
                       kwargs_numerics={"supersampling_factor": SS, "supersampling_convolution": False})
    return model.image(kwargs_lens=kw_lens, kwargs_source=kw_src)


def npz_blob(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def run(spec: dict) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dhs.cosmos.bank import load_bank

    clock = Clock()
    t = time.process_time()
    rows = pq.read_table(spec["manifest"]).to_pylist()
    bank = load_bank(spec["bank"])
    t = clock.add("overhead", t)
    out_rows: list[dict] = []
    by_brick: dict[str, list[dict]] = {}
    for r in rows:
        by_brick.setdefault(r["brickname"], []).append(r)
    flux_r = []
    for brick, tasks in by_brick.items():
        arrays = read_brick(spec["base_url"], brick)
        t = clock.add("read", t)
        for r in tasks:
            size = int(r["stamp_size"])
            x, y = arrays["wcs"].all_world2pix(r["ra"], r["dec"], 0)
            ix, iy, half = int(np.floor(x + 0.5)), int(np.floor(y + 0.5)), size // 2
            win = (slice(iy - half, iy - half + size), slice(ix - half, ix - half + size))
            img = np.stack([arrays[f"image_{b}"][win] for b in BANDS]).astype(np.float32)
            ivar = np.stack([arrays[f"invvar_{b}"][win] for b in BANDS]).astype(np.float32)
            mask = arrays["maskbits"][win]
            fwhm = {b: float(arrays[f"psfsize_{b}"][iy, ix]) for b in BANDS}
            t = clock.add("read", t)
            k = cosmos_index(r["task_id"], len(bank))
            mags = {"r": r["src_mag_r"], "g": r["src_mag_r"] + r["src_gr"], "z": r["src_mag_r"] - r["src_rz"]}
            arc = np.stack([render_band(r, bank.images[k].astype(np.float64), bank.pixscale,
                                        10 ** (-0.4 * (mags[b] - 22.5)), fwhm[b], size)
                            for b in BANDS]).astype(np.float32)
            stamp = img + arc
            snr = float(np.max(arc[1] * np.sqrt(np.clip(ivar[1], 0, None))))
            flux_r.append(float(arc[1].sum()))
            t = clock.add("render", t)
            out_rows.append({"task_id": r["task_id"], "brickname": brick, "arc_snr": snr,
                             "stamp_npz": npz_blob(image=stamp, invvar=ivar, mask=mask)})
            t = clock.add("write", t)
    table = pa.Table.from_pylist(out_rows)
    pq.write_table(table, spec["out"], compression="snappy")
    clock.add("write", t)
    return {"stamps": len(out_rows), "parts": clock.parts, "bytes": Path(spec["out"]).stat().st_size,
            "flux_r": dict(zip([r["task_id"] for r in out_rows], flux_r))}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    res = run(spec)
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    res["process_cpu_s"] = ru.ru_utime + ru.ru_stime
    res["peak_rss_mb"] = ru.ru_maxrss / 1024
    print("PEER_JSON " + json.dumps(res))


if __name__ == "__main__":
    main()
