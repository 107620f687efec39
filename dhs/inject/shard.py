"""One 4c shard: the tasks of a few bricks -> a stamps part and a metrics part, committed atomically.

A shard is ``{"experiment_id", "shard_id", "rows": pyarrow.Table, "stamps_dir", "metrics_dir"}``
(manifest rows sorted by brick, the two output datasets), or carries manifest ranges instead of
``rows`` (``dhs.inject.ranges``: the worker reads them); the worker gets it with the stage's
``InjectSettings``; ``"redo": True`` (``retry_failed``) redoes a committed shard. Each brick's
files are opened once (per-worker LRU), stamps cut, arcs rendered and added,
metrics computed. Errors stay on their rows (``cutout_ok=0``, ``error_code``); the stamps part is
written first and the metrics part last, so a shard is done when its metrics marker exists.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa

from dhs import schema
from dhs.inject import failures
from dhs.inject.failures import Failure
from dhs.inject.settings import InjectSettings, blacklisted_bricks, shard_fingerprint
from dhs.io import datasets, shards

#: Parquet options of the stamps dataset: float arrays byte-stream-split (lossless, ~35% smaller
#: than plain under zstd), ids dictionary-encoded.
STAMP_PARQUET = {"column_encoding": {f"{c}.list.element": "BYTE_STREAM_SPLIT" for c in ("image", "invvar", "arc")},
                 "use_dictionary": ["task_id", "experiment_id", "brickname", "bandset", "maskbits.list.element"],
                 "compression_level": 3}
#: Under ``output.quantize``: integers delta-bit-packed before zstd (noise integers take about
#: log2(Q) + 2.5 bits a pixel).
QUANTIZED_PARQUET = {**STAMP_PARQUET, "column_encoding": {
    **STAMP_PARQUET["column_encoding"], "image.list.element": "DELTA_BINARY_PACKED",
    "arc.list.element": "DELTA_BINARY_PACKED"}}


def _bank(s: InjectSettings) -> Any:
    """The COSMOS bank (loaded once per process, see ``load_bank``)."""
    if s.source.kind != "cosmos":
        return None
    from dhs.cosmos.bank import load_bank

    return load_bank(str(s.source.bank_path))


def _list_column(arr: np.ndarray, typ: pa.DataType) -> pa.Array:
    flat = arr.reshape(arr.shape[0], -1)
    offsets = np.arange(0, flat.size + 1, max(flat.shape[1], 1), dtype=np.int32)[: flat.shape[0] + 1]
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.ravel(), type=typ.value_type))


class BrickCut:
    """The survey stamps of a shard's rows, cut brick by brick (``cut(brick)``, bricks in
    ``bricks``), so that one pass over a brick can serve the shards of several experiments."""

    def __init__(self, s: InjectSettings, rows: pa.Table, blacklist: frozenset):
        self.s, self.blacklist = s, blacklist
        n = rows.num_rows
        self.cols = {c: rows.column(c).to_numpy(zero_copy_only=False) for c in rows.column_names}
        self.size, self.bands = int(self.cols["stamp_size"][0]), str(self.cols["bandset"][0])
        nb = len(self.bands)
        self.image = np.zeros((n, nb, self.size, self.size), np.float32)
        self.invvar = np.zeros_like(self.image)
        self.maskbits = np.zeros((n, self.size, self.size), np.int32)
        self.psf_map = np.full((n, nb), np.nan)
        self.error = np.full(n, "", dtype=object)
        self.invvar_src = np.full(n, "coadd", dtype=object)
        self.reason = np.full(n, None, dtype=object)
        self.bricks = list(dict.fromkeys(self.cols["brickname"]))

    def cut(self, brick: str) -> None:
        """Cut the stamps of this shard's rows in ``brick``."""
        from dhs.inject.cutouts import cut_brick, cut_cutouts

        s, cols = self.s, self.cols
        idx = np.flatnonzero(cols["brickname"] == brick)
        if s.survey_source == "cutout_service":  # one cached cutout per target, no blacklist
            st = cut_cutouts(s, cols["task_id"][idx], cols["ra"][idx], cols["dec"][idx], self.bands, self.size,
                             str(brick))
        elif brick in self.blacklist:
            self.error[idx] = "blacklisted_brick"
            self.reason[idx] = [Failure("blacklisted_brick", s.blacklist_path, 404,
                                        f"brick {brick} is on the blacklist (404 at the survey)")] * len(idx)
            return
        else:
            st = cut_brick(s, str(brick), cols["ra"][idx], cols["dec"][idx], self.bands, self.size)
        self.image[idx], self.invvar[idx], self.maskbits[idx] = st.image, st.invvar, st.maskbits
        self.psf_map[idx], self.error[idx], self.reason[idx] = st.psf_map, st.error, st.reason
        if st.invvar_source is not None:
            self.invvar_src[idx] = st.invvar_source


def _process(s: InjectSettings, rows: pa.Table, bank: Any, blacklist: frozenset) -> tuple[dict, dict]:
    """Metric columns and stamp arrays for all rows of a shard."""
    cut = BrickCut(s, rows, blacklist)
    for brick in cut.bricks:
        cut.cut(brick)
    return finish(cut, bank)


def finish(cut: BrickCut, bank: Any) -> tuple[dict, dict]:
    """Render and add the arcs of a shard whose stamps are cut; its metric columns and arrays."""
    from dhs.inject import arcs as inj  # physics loads in workers only

    s, cols, size, bands = cut.s, cut.cols, cut.size, cut.bands
    image, invvar, maskbits, psf_map, error = cut.image, cut.invvar, cut.maskbits, cut.psf_map, cut.error
    invvar_src, reason = cut.invvar_src, cut.reason
    n, nb, all_bands = len(error), len(bands), list(s.bands)
    arcs = np.zeros_like(image)
    fwhm, psf_src = inj.choose_psf(psf_map, cols, bands, s.psf.default_fwhm_arcsec)
    error[(error == "") & ~(np.isfinite(fwhm) & (fwhm > 0)).all(axis=1)] = "bad_psf"
    cos_idx = np.full(n, -1, np.int64)
    if bank is not None:
        cos_idx = inj.cosmos_index([str(t) for t in cols["task_id"]], str(s.source.cosmos_salt), len(bank))
    is_ctrl = np.asarray(cols["is_control"]).astype(bool)
    cos_idx[is_ctrl] = -1
    todo = np.flatnonzero((error == "") & ~is_ctrl & (np.asarray(cols["theta_e_arcsec"], float) > 0))
    phys: dict[str, np.ndarray] = {}
    r = bands.index("r") if "r" in bands else 0
    sky_r, sky_invvar_r = image[:, r].copy(), invvar[:, r].copy()
    gain = np.full((n, nb), np.nan)
    if todo.size:
        rendered, met, done = inj.render_isolating_bad_rows(s, cols, todo, fwhm, bands, size, bank,
                                                            cos_idx, error, reason)
        if s.core_mask_radius_pix > 0:
            from dhs.inject.metrics import core_mask

            rendered[:, :, core_mask(size, s.core_mask_radius_pix)] = 0.0
        noise = np.zeros_like(rendered)
        if s.photon_noise and len(done):
            noise, invvar[done], gain[done] = inj.add_photon_noise(s, rendered, invvar[done], maskbits[done],
                                                                   bands, cols["task_id"][done])
        image[done] = image[done] + rendered + noise
        arcs[done] = rendered
        for key, val in met.items():
            full = np.full(n, np.nan) if val.dtype.kind == "f" else np.zeros(n, val.dtype)
            full[done] = val
            phys[key] = full
    ok = error == ""
    with np.errstate(divide="ignore", invalid="ignore"):
        photon_var = np.where(np.isfinite(gain[:, r, None, None]), np.clip(arcs[:, r], 0, None)
                              / gain[:, r, None, None], 0.0)
    sm = inj.stamp_metrics(arcs[:, r], sky_invvar_r, maskbits, s.pixscale_arcsec, sky_image_r=sky_r,
                           photon_var_r=photon_var)
    out: dict[str, Any] = {"cutout_ok": ok.astype(np.int32), "error_code": error.astype(str),
                           "invvar_source": np.where(ok, invvar_src, None),
                           **failures.row_columns(list(reason))}
    out.update({k: np.where(ok, v, np.nan) for k, v in sm.items()})
    for b in all_bands:
        j = bands.find(b)
        out[f"psf_fwhm_used_{b}"] = np.where(ok, fwhm[:, j], np.nan) if j >= 0 else np.full(n, np.nan)
        out[f"psf_source_{b}"] = np.where(ok, psf_src[:, j], None) if j >= 0 else np.full(n, None)
        out[f"injected_flux_{b}"] = (np.where(ok, arcs[:, j].sum(axis=(1, 2), dtype=np.float64), np.nan)
                                     if j >= 0 else np.full(n, np.nan))
        out[f"arc_gain_{b}"] = np.where(ok, gain[:, j], np.nan) if j >= 0 else np.full(n, np.nan)
    nan = np.full(n, np.nan)
    for key, src_key in (("magnification", "magnification"), ("tangential_stretch", "tangential_stretch"),
                         ("radial_stretch", "radial_stretch"), ("magnification_proxy", "magnification_proxy_1p1"),
                         ("expected_arc_radius", "expected_arc_radius")):
        vals = phys.get(src_key, nan)
        out[key] = np.where(ok, vals, np.nan)
    bits = phys.get("physics_warnings", np.zeros(n, np.uint32))
    out["physics_warnings"] = np.array(inj.warnings_text(bits), dtype=object)
    out["source_mode"] = np.full(n, s.source.kind, dtype=object)
    out["cosmos_index"] = cos_idx
    hlr = np.full(n, np.nan)
    if bank is not None:
        hlr[cos_idx >= 0] = np.asarray(bank.hlr_arcsec)[cos_idx[cos_idx >= 0]]
    out["cosmos_hlr_arcsec"] = hlr
    rot, flip = np.full(n, np.nan), np.full(n, -1, np.int32)
    has = cos_idx >= 0
    if has.any():
        rot[has], flip[has] = inj.cosmos_orientation(cols["task_id"][has], str(s.source.cosmos_salt))
    out["cosmos_rotation_rad"], out["cosmos_flip"] = rot, flip
    out["core_mask_radius"] = np.full(n, s.core_mask_radius_pix)
    out["supersample"] = np.where(ok, phys.get("supersample", np.zeros(n, np.int64)), 0).astype(np.int32)
    out["psf_model"] = np.full(n, s.psf.model, dtype=object)
    out["moffat_beta"] = np.full(n, float(s.psf.beta) if s.psf.beta is not None else np.nan)
    out["z_source"] = np.full(n, s.source.z_source)
    out["photon_noise"] = np.full(n, int(s.photon_noise), np.int32)
    finite = np.isfinite(out["bad_pixel_frac"]) & np.isfinite(out["wise_brightmask_frac"])
    for key in ("arc_snr", "arc_snr_max", "magnification"):
        finite &= is_ctrl | np.isfinite(out[key])
    out["metrics_ok"] = (ok & finite).astype(np.int32)
    control_nulls(out, is_ctrl, all_bands)
    arrays = {"image": image, "invvar": invvar, "maskbits": maskbits, "arc": arcs}
    return out, arrays


def control_nulls(out: dict, is_ctrl: np.ndarray, bands: list[str]) -> None:
    """Blank (None: null in the table) the arc, source and renderer columns of control rows."""
    if not is_ctrl.any():
        return
    for key in schema.control_null_columns(bands):
        if key in out:
            col = np.asarray(out[key]).astype(object)
            col[is_ctrl] = None
            out[key] = col


def metrics_table(rows: pa.Table, out: dict, bands: list[str]) -> pa.Table:
    cols = schema.MANIFEST + schema.metrics_columns(bands)
    data = {c.name: rows.column(c.name) for c in schema.MANIFEST}
    data.update({c.name: pa.array(out[c.name], type=c.type, from_pandas=True) for c in schema.metrics_columns(bands)})
    return pa.table(data, schema=schema.arrow_schema(cols))


def stamps_table(rows: pa.Table, out: dict, arrays: dict, save_arc: bool, quantize: float = 0.0) -> pa.Table:
    """The stamps part of a shard; ``quantize`` > 0 stores image and arc as integers at
    sigma / ``quantize`` (``dhs.io.quantize``), else lossless float32."""
    cols = schema.stamp_columns(save_arc, quantized=quantize > 0)
    data: dict[str, Any] = {c: rows.column(c) for c in ("task_id", "experiment_id", "brickname",
                                                       "is_control", "bandset", "stamp_size")}
    data["cutout_ok"] = pa.array(out["cutout_ok"], pa.int32())
    arrays = dict(arrays)
    if quantize > 0:
        from dhs.io import quantize as qz

        seed = qz.seeds(rows.column("task_id").to_pylist())
        step = qz.steps(arrays["image"], arrays["invvar"], quantize)
        for name in ("image", "arc") if save_arc else ("image",):
            arrays[name] = qz.encode(arrays[name], step, seed, name)
        data["quant_step"] = _list_column(step, pa.list_(pa.float32()))
        data["quant_seed"] = pa.array(seed, pa.int64())
    for name in ("image", "invvar", "maskbits") + (("arc",) if save_arc else ()):
        typ = next(c.type for c in cols if c.name == name)
        data[name] = _list_column(arrays[name], typ)
    table = pa.table(data, schema=schema.arrow_schema(cols))
    return table.append_column("region_split", rows.column("region_split"))


def skipped_summary(shard: dict) -> dict:
    """The summary of a shard committed before with its current fingerprint (kept)."""
    n = shard["rows"].num_rows if "rows" in shard else shard["n_rows"]
    return {"shard": shard["shard_id"], "skipped": True, "rows": n, "errors": {},
            "bytes": 0, "seconds": 0.0}


def fingerprint(shard: dict, s: InjectSettings) -> Any:
    """The fingerprint a shard is written with now (``shard["fingerprint"]``, else from its rows and
    ``s``); its blacklisted bricks are the ones the shard applies."""
    from dhs.inject.ranges import shard_rows

    return shard.get("fingerprint") or shard_fingerprint(shard_rows(shard), s)


def is_current(shard: dict, s: InjectSettings) -> bool:
    """True when the shard is committed with the fingerprint it would be written with now,
    committed work is kept (``skip_existing``) and the shard is not to be redone (``shard["redo"]``)."""
    fp, o = fingerprint(shard, s), s.output
    dirs = (shard["metrics_dir"],) if o.metrics_only else (shard["stamps_dir"], shard["metrics_dir"])
    return (s.skip_existing and not shard.get("redo")
            and all(shards.state(d, shard["shard_id"], fp) == "current" for d in dirs))


def run_shard(shard: dict, s: InjectSettings) -> dict:
    """Inject one shard and commit it; returns its counts (rows, errors, bytes, seconds).

    The shard is kept when its markers carry the fingerprint it would be written with now
    (``shard["fingerprint"]``, else computed from its rows and ``s``).
    """
    from dhs.inject.ranges import shard_rows

    if is_current(shard, s):
        return skipped_summary(shard)
    t0 = time.perf_counter()
    shard = {**shard, "rows": shard_rows(shard)}
    out, arrays = _process(s, shard["rows"], _bank(s), blacklisted_bricks(fingerprint(shard, s)))
    return commit(shard, s, out, arrays, t0)


def commit(shard: dict, s: InjectSettings, out: dict, arrays: dict, t0: float) -> dict:
    """Write a processed shard (stamps part first, metrics part last, both with the shard's
    fingerprint); its counts."""
    sid, rows = shard["shard_id"], shard["rows"]
    mdir, sdir = shard["metrics_dir"], shard["stamps_dir"]
    fp, o = fingerprint(shard, s), s.output
    errors: dict[str, int] = {}
    for code in out["error_code"]:
        errors[code or "ok"] = errors.get(code or "ok", 0) + 1
    nbytes = 0
    extra = {"errors": errors}
    if not o.metrics_only:
        st = stamps_table(rows, out, arrays, o.save_arc, o.quantize)
        nbytes += datasets.write_shard(st, sdir, sid, compression=o.compression, extra=extra,
                                       parquet_options=QUANTIZED_PARQUET if o.quantize > 0 else STAMP_PARQUET,
                                       return_bytes=True, fingerprint=fp)["bytes"]
    mt = metrics_table(rows, out, list(s.bands))
    nbytes += datasets.write_shard(mt, mdir, sid, compression=o.compression, extra=extra,
                                   return_bytes=True, fingerprint=fp)["bytes"]
    return {"shard": sid, "skipped": False, "rows": rows.num_rows, "errors": errors, "bytes": nbytes,
            "seconds": time.perf_counter() - t0}
