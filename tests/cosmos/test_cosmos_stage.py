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
