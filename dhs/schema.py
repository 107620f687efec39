"""Every output column of every stage: name, Arrow type, unit and meaning, defined once.

Stages build their tables with ``arrow_schema(...)`` and tests check outputs against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    unit: str
    doc: str


def _c(name: str, typ: pa.DataType, unit: str, doc: str) -> Column:
    return Column(name, typ, unit, doc)


F64, F32, I64, I32 = pa.float64(), pa.float32(), pa.int64(), pa.int32()
I16, STR, BOOL = pa.int16(), pa.string(), pa.bool_()

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
    _c("theta_e_arcsec", F64, "arcsec", "Einstein radius (0 for controls)"),
    _c("src_dmag", F64, "mag", "source r magnitude minus lens r magnitude"),
    _c("src_reff_arcsec", F64, "arcsec", "Sersic source effective radius"),
    _c("src_e", F64, "", "source ellipticity (1-q)/(1+q)"),
    _c("shear", F64, "", "external shear amplitude"),
    _c("stamp_size", I32, "pixel", "stamp side"),
    _c("bandset", STR, "", "bands of the stamp, e.g. grz"),
    _c("replicate", I32, "", "replicate index"),
    _c("is_control", I32, "", "1 for a control (no arc)"),
    _c("task_seed64", I64, "", "64-bit seed of the task (hash of task_id and seed_base)"),
    _c("src_x_arcsec", F64, "arcsec", "source-plane offset, x"),
    _c("src_y_arcsec", F64, "arcsec", "source-plane offset, y"),
    _c("src_phi_rad", F64, "rad", "source position angle"),
    _c("shear_phi_rad", F64, "rad", "shear angle in [0, pi)"),
    _c("src_gr", F64, "mag", "source g - r colour"),
    _c("src_rz", F64, "mag", "source r - z colour"),
    _c("src_mag_r", F64, "mag", "source r magnitude = rmag + src_dmag"),
    _c("lens_model", STR, "", "SIE or CONTROL"),
    _c("lens_e", F64, "", "lens ellipticity (1-q)/(1+q) in [0.05, 0.5]"),
    _c("lens_phi_rad", F64, "rad", "lens position angle in [0, pi)"),
    _c("ab_zp_nmgy", F64, "mag", "AB zero point of nanomaggies (22.5)"),
    _c("pipeline_version", STR, "", "dhs version that wrote the row"),
)

BRICKS_MANIFEST: tuple[Column, ...] = (
    _c("brickname", STR, "", "DR10 brick"),
    _c("experiment_id", STR, "", "experiment"),
    _c("n_tasks", I64, "", "tasks of the experiment in the brick"),
)


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a column set, with units and docs as field metadata."""
    return pa.schema([pa.field(c.name, c.type, metadata={b"unit": c.unit.encode(), b"doc": c.doc.encode()})
                      for c in columns])


def names(columns: tuple[Column, ...]) -> list[str]:
    return [c.name for c in columns]
