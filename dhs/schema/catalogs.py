"""Columns of the survey-side tables: the mock survey's parent, brick and region tables, and
the DR10 parent sample, brick and region tables that stage parent writes and stage 4a reads."""

from __future__ import annotations

from dhs.schema.columns import BOOL, F32, F64, I16, I32, I64, STR, Column, _c  # noqa: F401

# ----------------------------------------------------------------------------- stage mock_survey
#: parent_catalog.parquet of the mock survey (the columns stage 4a reads, earlier system's names).
MOCK_PARENT: tuple[Column, ...] = (
    _c("brickname", STR, "", "DR10 brick holding the galaxy"),
    _c("objid", I64, "", "object id within the brick"),
    _c("ra", F64, "deg", "right ascension (model centre)"),
    _c("dec", F64, "deg", "declination (model centre)"),
    _c("region_id", I64, "", "region of the brick"),
    _c("region_split", STR, "", "train, val or test (region-level holdout)"),
    _c("gmag", F64, "mag", "observed g (MW extinction included)"),
    _c("rmag", F64, "mag", "observed r (MW extinction included)"),
    _c("zmag", F64, "mag", "observed z (MW extinction included)"),
    _c("w1mag", F64, "mag", "observed W1 (AB)"),
    _c("rz", F64, "mag", "r - z from MW-corrected magnitudes"),
    _c("zw1", F64, "mag", "z - W1 from MW-corrected magnitudes"),
    _c("gmag_mw", F64, "mag", "MW-corrected g (NaN where gmag_valid is false)"),
    _c("rmag_mw", F64, "mag", "MW-corrected r"),
    _c("zmag_mw", F64, "mag", "MW-corrected z"),
    _c("w1mag_mw", F64, "mag", "MW-corrected W1"),
    _c("gmag_valid", BOOL, "", "valid g-band photometry"),
    _c("type", STR, "", "Tractor morphological type (DEV)"),
    _c("sersic", F64, "", "Sersic index of the model (4)"),
    _c("shape_r", F64, "arcsec", "semi-major half-light radius"),
    _c("shape_e1", F64, "", "ellipticity component (1-q)/(1+q) cos 2phi"),
    _c("shape_e2", F64, "", "ellipticity component (1-q)/(1+q) sin 2phi"),
    _c("flux_g", F64, "nmgy", "observed total g flux"),
    _c("flux_r", F64, "nmgy", "observed total r flux"),
    _c("flux_z", F64, "nmgy", "observed total z flux"),
    _c("ebv", F64, "mag", "SFD E(B-V) of the brick"),
    _c("is_v1_pure_massive", BOOL, "", "LRG variant v1: zmag_mw < 20.0, rz > 0.5, zw1 > 1.6"),
    _c("is_v2_baseline_dr10", BOOL, "", "LRG variant v2: zmag_mw < 20.4, rz > 0.4, zw1 > 1.6"),
    _c("is_v3_color_relaxed", BOOL, "", "LRG variant v3: zmag_mw < 20.4, rz > 0.4, zw1 > 0.8"),
    _c("is_v4_mag_relaxed", BOOL, "", "LRG variant v4: zmag_mw < 21.0, rz > 0.4, zw1 > 0.8"),
    _c("is_v5_very_relaxed", BOOL, "", "LRG variant v5: zmag_mw < 21.5, rz > 0.3, zw1 > 0.5"),
)

#: bricks_with_region.parquet of the mock survey.
MOCK_BRICKS: tuple[Column, ...] = (
    _c("brickname", STR, "", "DR10 brick"),
    _c("brickid", I64, "", "DR10 BRICKID"),
    _c("region_id", I64, "", "region of the brick"),
    _c("region_split", STR, "", "train, val or test"),
    _c("ra", F64, "deg", "brick centre RA"),
    _c("dec", F64, "deg", "brick centre Dec"),
    _c("ra1", F64, "deg", "primary area RA min"),
    _c("ra2", F64, "deg", "primary area RA max"),
    _c("dec1", F64, "deg", "primary area Dec min"),
    _c("dec2", F64, "deg", "primary area Dec max"),
    _c("psfsize_g", F64, "arcsec", "PSF FWHM at the brick centre, g"),
    _c("psfsize_r", F64, "arcsec", "PSF FWHM at the brick centre, r"),
    _c("psfsize_z", F64, "arcsec", "PSF FWHM at the brick centre, z"),
    _c("psfdepth_g", F64, "1/nmgy^2", "point-source flux inverse variance (invvar * sum PSF^2) at the centre, g"),
    _c("psfdepth_r", F64, "1/nmgy^2", "point-source flux inverse variance (invvar * sum PSF^2) at the centre, r"),
    _c("psfdepth_z", F64, "1/nmgy^2", "point-source flux inverse variance (invvar * sum PSF^2) at the centre, z"),
    _c("ebv", F64, "mag", "SFD E(B-V) of the brick"),
    _c("n_lrg", I64, "", "parent-catalog galaxies in the brick"),
    _c("brick_size_pix", I64, "pixel", "side of the brick images"),
)

#: region_selections.parquet of the mock survey.
MOCK_REGION_SELECTIONS: tuple[Column, ...] = (
    _c("selection_set_id", STR, "", "selection set"),
    _c("selection_strategy", STR, "", "how the set chose regions"),
    _c("ranking_mode", STR, "", "region ranking (density, psf_weighted, n_lrg)"),
    _c("region_id", I64, "", "selected region"),
    _c("region_split", STR, "", "split of the region"),
    _c("rank", I64, "", "rank of the region within its split (0 = best)"),
)


# ----------------------------------------------------------------------------- stage parent
#: parent_catalog.parquet/ of stage parent: the LRG parent sample from DR10 sweep/tractor catalogs.
PARENT_CATALOG: tuple[Column, ...] = (
    _c("brickname", STR, "", "DR10 brick holding the galaxy (BRICKNAME)"),
    _c("brickid", I64, "", "DR10 BRICKID"),
    _c("objid", I64, "", "object id within the brick (OBJID)"),
    _c("release", I32, "", "Tractor RELEASE (10000 for DR10 south, 10002 reprocessed in 10.1)"),
    _c("ra", F64, "deg", "right ascension (RA)"),
    _c("dec", F64, "deg", "declination (DEC)"),
    _c("type", STR, "", "Tractor morphological type (PSF, REX, DEV, EXP, SER)"),
    _c("region_id", I64, "", "nested HEALPix cell of the brick centre (parent.region_nside)"),
    _c("region_split", STR, "", "train, val or test (hashed from the region, see dhs.parent.regions)"),
    _c("rmag", F64, "mag", "observed r (MW extinction included): 22.5 - 2.5 log10 FLUX_R"),
    _c("zmag", F64, "mag", "observed z (MW extinction included)"),
    _c("w1mag", F64, "mag", "observed W1 (AB)"),
    _c("rz", F64, "mag", "rmag_mw - zmag_mw"),
    _c("zw1", F64, "mag", "zmag_mw - w1mag_mw"),
    _c("gmag_mw", F64, "mag", "MW-corrected g: 22.5 - 2.5 log10 max(FLUX_G / MW_TRANSMISSION_G, 1e-7)"),
    _c("rmag_mw", F64, "mag", "MW-corrected r"),
    _c("zmag_mw", F64, "mag", "MW-corrected z"),
    _c("w1mag_mw", F64, "mag", "MW-corrected W1"),
    _c("zfibermag_mw", F64, "mag", "MW-corrected z fibre magnitude (FIBERFLUX_Z)"),
    _c("shape_r", F64, "arcsec", "half-light radius of the Tractor model (SHAPE_R; 0 for PSF)"),
    _c("shape_e1", F64, "", "ellipticity component SHAPE_E1"),
    _c("shape_e2", F64, "", "ellipticity component SHAPE_E2"),
    _c("sersic", F64, "", "Sersic index of the model (SERSIC; NaN when the catalog has none)"),
    _c("ebv", F64, "mag", "SFD E(B-V) at the galaxy (EBV)"),
    _c("is_lrg_desi", BOOL, "", "DESI LRG (Zhou et al. 2023): quality and colour cuts, dhs.parent.lrg"),
    _c("is_v1_pure_massive", BOOL, "", "quality cuts and zmag_mw < 20.0, rz > 0.5, zw1 > 1.6"),
    _c("is_v2_baseline_dr10", BOOL, "", "quality cuts and zmag_mw < 20.4, rz > 0.4, zw1 > 1.6"),
    _c("is_v3_color_relaxed", BOOL, "", "quality cuts and zmag_mw < 20.4, rz > 0.4, zw1 > 0.8"),
    _c("is_v4_mag_relaxed", BOOL, "", "quality cuts and zmag_mw < 21.0, rz > 0.4, zw1 > 0.8"),
    _c("is_v5_very_relaxed", BOOL, "", "quality cuts and zmag_mw < 21.5, rz > 0.3, zw1 > 0.5"),
)

#: bricks_with_region.parquet of stage parent: one row per brick holding catalog objects.
PARENT_BRICKS: tuple[Column, ...] = (
    _c("brickname", STR, "", "DR10 brick"),
    _c("brickid", I64, "", "DR10 BRICKID"),
    _c("ra", F64, "deg", "brick centre RA"),
    _c("dec", F64, "deg", "brick centre Dec"),
    _c("region_id", I64, "", "nested HEALPix cell of the brick centre"),
    _c("region_split", STR, "", "train, val or test"),
    _c("psfsize_g", F64, "arcsec", "PSF FWHM, g (mean over the brick's objects, or the bricks summary)"),
    _c("psfsize_r", F64, "arcsec", "PSF FWHM, r"),
    _c("psfsize_z", F64, "arcsec", "PSF FWHM, z"),
    _c("psfdepth_g", F64, "1/nmgy^2", "point-source flux inverse variance, g"),
    _c("psfdepth_r", F64, "1/nmgy^2", "point-source flux inverse variance, r"),
    _c("psfdepth_z", F64, "1/nmgy^2", "point-source flux inverse variance, z"),
    _c("ebv", F64, "mag", "SFD E(B-V) (mean over the brick's objects)"),
    _c("n_objects", I64, "", "catalog objects of the brick that were read"),
    _c("n_parent", I64, "", "parent-catalog galaxies in the brick"),
    _c("n_lrg", I64, "", "galaxies of the brick with the ranking flag (parent.rank_flag)"),
)

#: region_metrics.parquet of stage parent: one row per region.
REGION_METRICS: tuple[Column, ...] = (
    _c("region_id", I64, "", "nested HEALPix cell"),
    _c("region_split", STR, "", "train, val or test"),
    _c("ra", F64, "deg", "cell centre RA"),
    _c("dec", F64, "deg", "cell centre Dec"),
    _c("n_bricks", I64, "", "bricks of the region in the brick table"),
    _c("n_parent", I64, "", "parent-catalog galaxies"),
    _c("n_lrg", I64, "", "galaxies with the ranking flag"),
    _c("psfsize_r", F64, "arcsec", "mean brick PSF FWHM, r"),
    _c("psfdepth_r", F64, "1/nmgy^2", "mean brick point-source depth, r"),
    _c("ebv", F64, "mag", "mean brick E(B-V)"),
)

#: region_selections.parquet (stage parent and the mock survey): regions chosen by each set.
REGION_SELECTIONS: tuple[Column, ...] = MOCK_REGION_SELECTIONS
