"""stage=cosmos_bank through the composed Hydra config, and the bank on S3 (moto server)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from dhs.context import make_context
from dhs.io import storage
from dhs.cosmos.bank import load_bank
from dhs.stages import cosmos_bank as stage

from ..s3_server import configure_storage, moto_server, storage_overrides
from .conftest import AEGIS


def test_stage_builds_records_and_respects_skip_and_force(compose, data_root, tmp_path):
    cfg = compose(["stage=cosmos_bank", f"paths.data_root={data_root}"])
    bank_path = str(cfg.paths.cosmos_bank)
    assert stage.datasets(cfg)["writes"] == [bank_path]
    ctx = make_context(tmp_path / "run")
    summary = stage.run(cfg, ctx)
    assert summary["read"] == 100 and summary["kept"] == len(load_bank(bank_path))
    record_path = os.path.join(os.path.dirname(bank_path), "_dhs_record_cosmos_bank.h5.json")
    record = json.loads(open(record_path).read())
    assert record["counts"]["kept"] == summary["kept"]
    assert record["config"]["cosmos_bank"]["hlr_max_arcsec"] == 1.0
    assert "real_galaxy_images_extension.fits" in record["input_sha256"]

    mtime = os.stat(bank_path).st_mtime_ns
    again = stage.run(cfg, ctx)
    assert again["skipped_existing"] and again["kept"] == summary["kept"]
    assert os.stat(bank_path).st_mtime_ns == mtime

    forced = compose(["stage=cosmos_bank", f"paths.data_root={data_root}", "force=true",
                      "cosmos_bank.max_galaxies=7"])
    out = stage.run(forced, ctx)
    assert out["kept"] == 7 and len(load_bank(bank_path)) == 7


@pytest.mark.s3
def test_bank_from_s3_input_to_s3_output(compose, tmp_path):
    with moto_server() as srv:
        srv.make_bucket("cosmos")
        configure_storage(srv)
        try:
            s3 = srv.client("s3")
            for f in sorted(AEGIS.iterdir()):
                s3.upload_file(str(f), "cosmos", f"aegis/{f.name}")
            bank_uri = "s3a://cosmos/banks/aegis.h5"
            cfg = compose(["stage=cosmos_bank", f"paths.data_root={tmp_path}",
                           f"paths.cosmos_bank={bank_uri}", "cosmos_bank.input=s3://cosmos/aegis",
                           "cosmos_bank.catalog_name=AEGIS_F814w_catalog.fits",
                           *storage_overrides(srv)])
            summary = stage.run(cfg, make_context(tmp_path / "run"))
            assert summary["read"] == 5 and summary["kept"] >= 4
            assert storage.exists("s3://cosmos/banks/aegis.h5")
            assert not storage.exists("s3://cosmos/banks/.aegis.h5.parts/_build.json")
            remote = load_bank(bank_uri)
            local = tmp_path / "local.h5"
            from dhs.cosmos.build import build_bank

            from .conftest import settings
            build_bank(settings(input=str(AEGIS), catalog_name="AEGIS_F814w_catalog.fits"),
                       str(local))
            np.testing.assert_array_equal(remote.images, load_bank(str(local)).images)
            sha = json.loads(remote.attrs["input_sha256"])
            assert "AEGIS_F814w_images_01.fits" in sha
        finally:
            storage.configure()


def _quiet_context(tmp_path):
    import io

    from rich.console import Console

    from dhs.context import RunContext

    return RunContext(run_dir=tmp_path, console=Console(file=io.StringIO(), width=300))


def test_a_bank_is_kept_only_when_its_fingerprint_matches(compose, data_root, tmp_path):
    """Unchanged input and settings: skipped; a setting changed, or an image file's bytes at equal
    size and modification time: rebuilt, and the bank records what made it."""
    import hashlib

    from astropy.io import fits

    from .conftest import IMAGES, copy_embedded

    src = copy_embedded(tmp_path / "input")
    base = ["stage=cosmos_bank", f"paths.data_root={data_root}", f"cosmos_bank.input={src}",
            "cosmos_bank.chunk=4", "cosmos_bank.max_galaxies=4"]
    cfg = compose(base)
    bank = str(cfg.paths.cosmos_bank)

    def run(detect_nsigma=1.5):
        ctx = _quiet_context(tmp_path)
        cfg.cosmos_bank.detect_nsigma = detect_nsigma
        return stage.run(cfg, ctx), ctx.console.file.getvalue()

    first, _ = run()
    assert not first.get("skipped_existing") and first["kept"] == 4
    mtime = os.stat(bank).st_mtime_ns
    again, text = run()
    assert again["skipped_existing"] and again["fingerprint"] == first["fingerprint"]["digest"]
    assert os.stat(bank).st_mtime_ns == mtime and "made from this input" in text

    changed, text = run(2.5)
    assert not changed.get("skipped_existing") and "made otherwise" in text
    assert "detect_nsigma" in text and "1.5" in text and "2.5" in text
    attrs = load_bank(bank).attrs
    assert json.loads(attrs["config"])["detect_nsigma"] == 2.5
    assert json.loads(attrs["fingerprint"])["digest"] == changed["fingerprint"]["digest"]
    assert run(2.5)[0]["skipped_existing"]

    images = src / IMAGES
    stat, old_sha = os.stat(images), hashlib.sha256(images.read_bytes()).hexdigest()
    hdu = int(np.asarray(fits.getdata(src / "real_galaxy_catalog_26_extension_example.fits", 1)["GAL_HDU"])[0])
    with fits.open(images, mode="update") as hdul:  # same size, other pixels
        hdul[hdu].data[2:6, 2:6] += 0.5
    os.utime(images, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(images).st_size == stat.st_size and os.stat(images).st_mtime_ns == stat.st_mtime_ns
    new_sha = hashlib.sha256(images.read_bytes()).hexdigest()
    assert new_sha != old_sha
    redone, text = run(2.5)
    assert not redone.get("skipped_existing") and "input files" in text
    assert json.loads(load_bank(bank).attrs["input_sha256"])[IMAGES] == new_sha
    assert run(2.5)[0]["skipped_existing"]
