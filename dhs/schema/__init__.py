"""Every output column of every stage: name, Arrow type, unit and meaning, defined once.

Stages build their tables with ``arrow_schema(...)`` and tests check outputs against it. The
pipeline stages' columns are here; the survey-side tables (mock survey, parent sample) are in
``dhs.schema.catalogs`` and re-exported; ``Column`` and ``arrow_schema`` in ``dhs.schema.columns``.
"""

from __future__ import annotations

import pyarrow as pa

from dhs.schema.columns import (BOOL, F32, F64, I16, I32, I64, STR, Column, _c,  # noqa: F401
                                arrow_schema, names)

# ----------------------------------------------------------------------------- stage 4a
MANIFEST: tuple[Column, ...] = (
    _c("task_id", STR, "",
       "stable hash of experiment, selection set, split, brick, ra, dec, config, replicate, control"),
    _c("experiment_id", STR, "", "{tier}_stamp{size}_bands{bandset}_grid{grid}"),
    _c("selection_set_id", STR, "", "region selection set that chose the galaxy's region"),
    _c("selection_strategy", STR, "", "how the selection set chose regions"),
    _c("ranking_mode", STR, "", "region ranking mode of the selection set"),
    _c("region_id", I64, "", "region of the galaxy"),
    _c("region_split", STR, "", "train, val or test (region-level holdout)"),
    _c("brickname", STR, "", "DR10 brick holding the galaxy"),
    _c("ra", F64, "deg", "galaxy right ascension (stamp centre)"),
    _c("dec", F64, "deg", "galaxy declination (stamp centre)"),
    _c("zmag", F64, "mag", "lens z magnitude"),
    _c("rmag", F64, "mag", "lens r magnitude"),
    _c("w1mag", F64, "mag", "lens W1 magnitude"),
    _c("rz", F64, "mag", "lens r - z colour"),
    _c("zw1", F64, "mag", "lens z - W1 colour"),
    _c("psfsize_g", F64, "arcsec", "brick PSF FWHM, g"),
    _c("psfsize_r", F64, "arcsec", "brick PSF FWHM, r"),
    _c("psfsize_z", F64, "arcsec", "brick PSF FWHM, z"),
    _c("psfdepth_r", F64, "1/nmgy^2", "brick point-source depth (inverse variance), r"),
    _c("ebv", F64, "mag", "SFD E(B-V) of the brick"),
    _c("psf_bin", I32, "", "quartile bin (0-3) of psfsize_r over the brick table"),
    _c("depth_bin", I32, "", "quartile bin (0-3) of psfdepth_r over the brick table"),
    _c("config_id", STR, "", "{grid}_{index:04d}_te.._dm.._rf.._e.._sh.., or CONTROL"),
    _c("theta_e_arcsec", F64, "arcsec", "Einstein radius (null for controls)"),
    _c("src_dmag", F64, "mag", "unlensed source r magnitude minus lens r magnitude (grid value, or "
       "src_mag_r - rmag when grid.source_mag=prior)"),
    _c("src_reff_arcsec", F64, "arcsec", "Sersic source effective radius (grid value, or drawn when "
       "grid.source_size=prior)"),
    _c("src_e", F64, "", "source ellipticity (1-q)/(1+q)"),
    _c("shear", F64, "", "external shear amplitude"),
    _c("stamp_size", I32, "pixel", "stamp side"),
    _c("bandset", STR, "", "bands of the stamp, e.g. grz"),
    _c("replicate", I32, "", "replicate index"),
    _c("is_control", I32, "", "1 for a control (no arc)"),
    _c("task_seed64", I64, "", "64-bit seed of the task (hash of task_id and seed_base)"),
    _c("src_x_arcsec", F64, "arcsec", "source-plane offset from the lens towards East"),
    _c("src_y_arcsec", F64, "arcsec", "source-plane offset from the lens towards North"),
    _c("src_phi_rad", F64, "rad", "source major-axis position angle, East of North, in [0, pi)"),
    _c("shear_phi_rad", F64, "rad", "external shear angle, East of North, in [0, pi)"),
    _c("src_gr", F64, "mag", "source g - r colour"),
    _c("src_rz", F64, "mag", "source r - z colour"),
    _c("src_mag_r", F64, "mag", "unlensed source r magnitude (rmag + src_dmag, or drawn from the "
       "grid's prior)"),
    _c("lens_model", STR, "", "SIE or CONTROL"),
    _c("lens_e", F64, "", "lens mass ellipticity (1-q)/(1+q) (grid.lens_shape: uniform, light or prior)"),
    _c("lens_phi_rad", F64, "rad", "lens mass major-axis position angle, East of North, in [0, pi)"),
    _c("ab_zp_nmgy", F64, "mag", "AB zero point of nanomaggies (22.5)"),
    _c("pipeline_version", STR, "", "dhs version that wrote the row"),
)

#: Manifest columns of the lens model and the source: a control has neither (no arc), so they
#: are null on control rows and set on every injection.
MANIFEST_CONTROL_NULL = ("theta_e_arcsec", "src_dmag", "src_reff_arcsec", "src_e", "shear", "src_x_arcsec",
                         "src_y_arcsec", "src_phi_rad", "shear_phi_rad", "src_gr", "src_rz", "src_mag_r",
                         "lens_e", "lens_phi_rad")

BRICKS_MANIFEST: tuple[Column, ...] = (
    _c("brickname", STR, "", "DR10 brick"),
    _c("experiment_id", STR, "", "experiment"),
    _c("n_tasks", I64, "", "tasks of the experiment in the brick"),
)


# ----------------------------------------------------------------------------- stage 4c
#: Error codes of a 4c row (empty string: no error).
#: Class of each code (dhs.inject.failures): 'outcome' (a fact about the sky, not a failure),
#: 'transient' (a retry can help), 'input' (an input is absent or damaged: repair it, then retry),
#: 'permanent' (retrying cannot help). ``retry_failed=true`` redoes transient and input rows.
ERROR_CLASSES = {"edge": "outcome", "nan_pixels": "outcome", "bad_psf": "outcome",
                 "transient_io": "transient", "corrupt_file": "input", "not_cached": "input",
                 "missing_file": "permanent", "blacklisted_brick": "permanent",
                 "access_error": "permanent", "render_failed": "permanent", "bad_row": "permanent",
                 "wrong_wcs": "input", "no_invvar": "permanent"}
ERROR_CODES = ("", *ERROR_CLASSES)
PSF_SOURCES = ("map", "manifest", "default")
#: Metrics columns of the arc, the source and the renderer: null on control rows (nothing was
#: rendered or added); the survey-side ones (PSF used, bad-pixel and bright-mask fractions) stay.
METRICS_CONTROL_NULL = ("arc_snr", "arc_snr_white", "arc_noise_corr", "arc_snr_max", "magnification",
                        "tangential_stretch", "radial_stretch", "magnification_proxy", "expected_arc_radius",
                        "physics_warnings", "source_mode", "cosmos_index", "cosmos_hlr_arcsec",
                        "cosmos_rotation_rad", "cosmos_flip", "lensed_hlr_arcsec", "core_mask_radius",
                        "supersample", "z_source", "photon_noise")
#: Per-band metrics columns of the arc ({b}: band), null on control rows.
METRICS_CONTROL_NULL_BANDS = ("injected_flux_{b}", "arc_gain_{b}")
#: Of the columns above, those every valid injection (metrics_ok = 1) carries (the others are
#: null by design for some injections: COSMOS columns of Sersic sources, gains without photon
#: noise, fluxes of bands outside the bandset).
METRICS_INJECTION_SET = ("arc_snr", "arc_snr_white", "arc_snr_max", "magnification", "physics_warnings",
                         "source_mode", "supersample", "core_mask_radius", "z_source", "photon_noise")


def control_null_columns(bands: tuple[str, ...] | list[str] = ("g", "r", "z")) -> tuple[str, ...]:
    """Every manifest and metrics column (for ``bands``) that is null on control rows."""
    return (MANIFEST_CONTROL_NULL + METRICS_CONTROL_NULL
            + tuple(t.format(b=b) for b in bands for t in METRICS_CONTROL_NULL_BANDS))


def metrics_columns(bands: tuple[str, ...] | list[str] = ("g", "r", "z")) -> tuple[Column, ...]:
    """Columns 4c adds to every manifest column in the metrics dataset (per-band ones for ``bands``).

    Control rows carry nulls in the arc, source and renderer columns (``control_null_columns``).
    """
    per_band: list[Column] = []
    for b in bands:
        per_band += [
            _c(f"psf_fwhm_used_{b}", F64, "arcsec", f"PSF FWHM used for band {b}"),
            _c(f"psf_source_{b}", STR, "", f"where the {b} FWHM came from: map, manifest or default"),
            _c(f"injected_flux_{b}", F64, "nmgy", f"total arc flux added in band {b} (after core mask, "
               "before photon noise)"),
            _c(f"arc_gain_{b}", F64, "electron/nmgy", f"effective gain of the stamp in band {b} that "
               "sets the arc's photon noise (NaN with inject.photon_noise=false)"),
        ]
    return (
        _c("cutout_ok", I32, "", "1 when the stamp was cut and injected"),
        _c("error_code", STR, "", "why cutout_ok is 0: " + ", ".join(e for e in ERROR_CODES if e)),
        _c("invvar_source", STR, "", "where the stamp's inverse variance came from: coadd (brick "
           "invvar files), cutout (the service's invvar HDU) or sky_estimate (image-only cutout, "
           "survey.cutout_sky_invvar)"),
        _c("error_file", STR, "", "file (path or URL) the error concerns; null when none"),
        _c("error_status", I32, "", "HTTP status of the failed request; null when none"),
        _c("error_message", STR, "", "exception text of the failure; null for ok rows"),
        _c("arc_snr", F64, "", "integrated r SNR of the arc pixels: sum of arc / sqrt(variance of the "
           "sum), from the correlated sky noise measured on the stamp's sky pixels plus photon noise"),
        _c("arc_snr_white", F64, "", "the same with independent pixels: sum of arc / sqrt(sum of 1/invvar)"),
        _c("arc_noise_corr", F64, "", "sqrt(correlated / independent-pixel sky variance) over the arc pixels"),
        _c("arc_snr_max", F64, "", "largest per-pixel arc / sigma over good r pixels (the earlier "
           "system's arc_snr)"),
        _c("bad_pixel_frac", F64, "", "fraction of stamp pixels with r-band bad maskbits or invvar <= 0"),
        _c("wise_brightmask_frac", F64, "", "fraction of stamp pixels with WISEM1 or WISEM2 set"),
        _c("metrics_ok", I32, "", "1 when cutout_ok and every metric that applies is finite (arc_snr, "
           "arc_snr_max, magnification for injections; bad_pixel_frac, wise_brightmask_frac for all)"),
        *per_band,
        _c("magnification", F64, "", "lensed over intrinsic source flux (before PSF)"),
        _c("tangential_stretch", F64, "", "tangential eigenvalue of the inverse Jacobian at the image"),
        _c("radial_stretch", F64, "", "radial eigenvalue of the inverse Jacobian at the image"),
        _c("magnification_proxy", F64, "", "point magnification at 1.1 theta_E (the earlier system's proxy)"),
        _c("expected_arc_radius", F64, "arcsec", "expected radius of the arc"),
        _c("physics_warnings", STR, "", "semicolon-separated renderer warnings"),
        _c("source_mode", STR, "", "sersic or cosmos"),
        _c("cosmos_index", I64, "", "index into the COSMOS bank (-1 for Sersic sources)"),
        _c("cosmos_hlr_arcsec", F64, "arcsec", "intrinsic half-light radius of the COSMOS source (bank value)"),
        _c("cosmos_rotation_rad", F64, "rad", "position angle (East of North) of the template's rows, "
           "in [0, 2 pi); NaN without a COSMOS source"),
        _c("cosmos_flip", I32, "", "1 when the template's columns were mirrored before rotation "
           "(-1 for Sersic sources)"),
        _c("lensed_hlr_arcsec", F64, "arcsec", "half-light radius of the rendered arc about the lens centre"),
        _c("core_mask_radius", F64, "pixel", "arc zeroed inside this radius before adding"),
        _c("supersample", I32, "", "supersampling factor the renderer used for the row"),
        _c("psf_model", STR, "", "moffat or gaussian"),
        _c("moffat_beta", F64, "", "Moffat beta (NaN for gaussian)"),
        _c("z_source", F64, "", "source redshift (configuration)"),
        _c("photon_noise", I32, "", "1 when the arc's photon noise was added (inject.photon_noise)"),
    )


STAMP_ARRAYS = ("image", "invvar", "maskbits")
#: Arrays stored as integers under ``output.quantize``.
QUANTIZED_ARRAYS = ("image", "arc")


def stamp_columns(save_arc: bool = False, quantized: bool = False) -> tuple[Column, ...]:
    """The stamps dataset: ids plus flattened (bands, size, size) arrays as Parquet lists.

    Floats are stored with Parquet's BYTE_STREAM_SPLIT encoding and zstd (lossless, readable by
    pyarrow, pandas, polars, DuckDB and Spark); ``dhs.io.stamps.to_numpy`` reshapes rows. With
    ``quantized`` (``output.quantize``) image and arc are int32 at ``quant_step`` per band with
    the dither of ``quant_seed`` (``dhs.io.quantize``; ``to_numpy`` turns them back into floats).
    """
    cols = [
        _c("task_id", STR, "", "task id (joins the metrics dataset)"),
        _c("experiment_id", STR, "", "experiment"),
        _c("brickname", STR, "", "brick"),
        _c("is_control", I32, "", "1 for a control"),
        _c("bandset", STR, "", "band order of the arrays, e.g. grz"),
        _c("stamp_size", I32, "pixel", "stamp side"),
        _c("cutout_ok", I32, "", "1 when the stamp is valid"),
        _c("image", pa.list_(F32), "nmgy", "image (bands, size, size) flattened, arc included"),
        _c("invvar", pa.list_(F32), "1/nmgy^2", "inverse variance (bands, size, size) flattened"),
        _c("maskbits", pa.list_(I32), "", "DR10 maskbits (size, size) flattened"),
    ]
    if save_arc:
        cols.append(_c("arc", pa.list_(F32), "nmgy", "the injected arc alone (bands, size, size) flattened"))
    if quantized:
        unit = "quant_step"
        cols = [_c(c.name, pa.list_(I32), unit, c.doc + ", quantized") if c.name in QUANTIZED_ARRAYS
                else c for c in cols]
        cols += [_c("quant_step", pa.list_(F32), "nmgy", "quantization step per band (noise sigma / Q)"),
                 _c("quant_seed", I64, "", "dither seed of the quantized arrays")]
    return tuple(cols)


# ----------------------------------------------------------------------------- stage score
#: Why a row has no score (score_flag); '' when it has one.
SCORE_FLAGS = ("", "no_cutout", "nan_score", "no_pixels", "finder_failed")

#: The scores dataset of stage=score (partitioned by region_split, one row per stamp).
SCORES: tuple[Column, ...] = (
    _c("task_id", STR, "", "task id (joins the stamps and metrics datasets)"),
    _c("is_control", I32, "", "1 for a control (copied from the stamps; never shown to the finder)"),
    _c("score", F64, "", "finder score, higher = more lens-like (NaN where score_ok = 0)"),
    _c("score_ok", I32, "", "1 when the finder scored the stamp"),
    _c("score_flag", STR, "", "why a row has no score: no_cutout, nan_score, no_pixels, finder_failed"),
    _c("finder", STR, "", "finder name: arcfinder, onnx or python"),
    _c("model_checksum", STR, "", "sha256 of the ONNX model or of the Python finder's source file"),
    _c("settings_hash", STR, "", "sha256 (16 hex digits) of the finder name, settings and pixel scale"),
)


# ----------------------------------------------------------------------------- stage 4d
#: Bin columns a completeness surface can be keyed by (lower edges for the binned quantities).
SURFACE_KEYS: tuple[Column, ...] = (
    _c("theta_e_arcsec", F64, "arcsec", "Einstein radius (grid value)"),
    _c("src_dmag", F64, "mag", "source r magnitude minus lens r magnitude (grid value)"),
    _c("src_reff_arcsec", F64, "arcsec", "Sersic source effective radius (grid value)"),
    _c("psf_bin_arcsec", F64, "arcsec", "lower edge of the 0.1 arcsec bin of psfsize_r"),
    _c("depth_bin_mag", F64, "mag", "lower edge of the 0.25 mag bin of the r-band 5-sigma point-source depth"),
    _c("resolution_lo", F64, "", "lower edge of the theta_E / psfsize_r bin"),
    _c("resolution_hi", F64, "", "upper edge of the theta_E / psfsize_r bin (inf for the last)"),
    _c("resolution_bin", STR, "", "theta_E / psfsize_r bin label, e.g. [0.8, 1.0)"),
)

_SURFACE_STATS: tuple[Column, ...] = (
    _c("n_attempted", I64, "", "injections attempted"),
    _c("n_valid", I64, "", "injections with cutout_ok = 1 and metrics_ok = 1"),
    _c("n_clean", I64, "", "valid injections within the bad-pixel and WISE bright-mask cuts"),
    _c("n_recovered", I64, "", "valid injections recovered"),
    _c("n_recovered_clean", I64, "", "clean injections recovered"),
    _c("completeness", F64, "", "n_recovered / n_valid (NaN when n_valid = 0)"),
    _c("completeness_lo", F64, "", "Wilson lower bound of completeness"),
    _c("completeness_hi", F64, "", "Wilson upper bound of completeness"),
    _c("completeness_attempted", F64, "", "n_recovered / n_attempted"),
    _c("completeness_attempted_lo", F64, "", "Wilson lower bound of completeness_attempted"),
    _c("completeness_attempted_hi", F64, "", "Wilson upper bound of completeness_attempted"),
    _c("completeness_clean", F64, "", "n_recovered_clean / n_clean"),
    _c("completeness_clean_lo", F64, "", "Wilson lower bound of completeness_clean"),
    _c("completeness_clean_hi", F64, "", "Wilson upper bound of completeness_clean"),
)

_SURFACE_ACROSS: tuple[Column, ...] = (
    _c("n_regions", I64, "", "regions with at least one valid injection in the bin"),
    _c("completeness_region_mean", F64, "", "mean over regions of the per-region completeness"),
    _c("completeness_region_std", F64, "", "sample standard deviation (ddof=1) over regions of the "
                                          "per-region completeness (NaN for one region)"),
)


#: What made a surface: the finder and its score threshold (every surface table names them).
SURFACE_LABELS: tuple[Column, ...] = (
    _c("finder", STR, "", "the finder whose scores made the surface (arcfinder, onnx, python, snr_proxy)"),
    _c("threshold", F64, "", "score threshold: recovered when score >= threshold"),
)

#: TPR-at-FPR curves of stage 4d (one row per requested FPR and theta_E/PSF bin).
TPR_AT_FPR: tuple[Column, ...] = (
    _c("finder", STR, "", "the finder whose scores are thresholded"),
    _c("fpr_target", F64, "", "requested false-positive rate of the controls"),
    _c("resolution_bin", STR, "", "theta_E / psfsize_r bin label, or 'all'"),
    _c("resolution_lo", F64, "", "lower edge of the theta_E / psfsize_r bin (NaN for 'all')"),
    _c("resolution_hi", F64, "", "upper edge of the theta_E / psfsize_r bin (NaN for 'all')"),
    _c("threshold", F64, "", "score threshold set on the controls for fpr_target"),
    _c("n_controls", I64, "", "valid controls the false-positive rate is measured on"),
    _c("n_false_positive", I64, "", "of them with score >= threshold"),
    _c("fpr", F64, "", "measured false-positive rate n_false_positive / n_controls"),
    _c("fpr_lo", F64, "", "Wilson lower bound of fpr"),
    _c("fpr_hi", F64, "", "Wilson upper bound of fpr"),
    _c("n_valid", I64, "", "valid injections in the bin"),
    _c("n_recovered", I64, "", "of them with score >= threshold"),
    _c("tpr", F64, "", "true-positive rate (completeness) n_recovered / n_valid"),
    _c("tpr_lo", F64, "", "Wilson lower bound of tpr"),
    _c("tpr_hi", F64, "", "Wilson upper bound of tpr"),
    _c("prevalence", F64, "", "assumed fraction of lenses among the targets (completeness.prevalence)"),
    _c("purity", F64, "", "prevalence tpr / (prevalence tpr + (1 - prevalence) fpr)"),
    _c("purity_lo", F64, "", "purity at tpr_lo and fpr_hi"),
    _c("purity_hi", F64, "", "purity at tpr_hi and fpr_lo"),
)


def surface_columns(keys: tuple[str, ...] | list[str], per_region: bool,
                    labelled: bool = True) -> tuple[Column, ...]:
    """Columns of a completeness surface keyed by ``keys`` (names from SURFACE_KEYS).

    Per-region surfaces carry region_id; aggregated surfaces carry the across-region statistics;
    ``labelled`` surfaces end with the finder and threshold (SURFACE_LABELS).
    ``region_split`` ('train', 'val', 'test' or 'all') is the partition column.
    """
    by_name = {c.name: c for c in SURFACE_KEYS}
    head = [_c("region_split", STR, "", "train, val, test, or all (every split pooled)")]
    if per_region:
        head.append(_c("region_id", I64, "", "region"))
    tail = _SURFACE_STATS if per_region else _SURFACE_STATS + _SURFACE_ACROSS
    return tuple(head + [by_name[k] for k in keys]) + tail + (SURFACE_LABELS if labelled else ())


from dhs.schema.catalogs import (MOCK_BRICKS, MOCK_PARENT, MOCK_REGION_SELECTIONS,  # noqa: E402,F401
                                 PARENT_BRICKS, PARENT_CATALOG, REGION_METRICS, REGION_SELECTIONS)
