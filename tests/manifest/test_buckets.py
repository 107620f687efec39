"""Stage 4a by brick bucket: the bytes never depend on manifest.bucket_rows or the batch size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from dhs.manifest import buckets

SMALL = ("tier.stamp_sizes=[64]", "tier.bandsets=[grz]", "manifest.write_csv=true")


def _digests(root: Path) -> dict[str, str]:
    """sha256 of every output file but the run records (they name the run's folders and time)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "_dhs_record.json"}


@pytest.fixture
def messy(tables, tmp_path):
    """The synthetic tables with repeated rows (across batches) and impossible coordinates."""
    from tests.manifest.synth import write_tables

    parent = tables["parent"]
    parent = pa.concat_tables([parent, parent.take(pa.array(np.arange(0, 2000, 13)))])
    ra = parent.column("ra").to_numpy().copy()
    ra[[3, 700]] = [np.nan, 361.0]
    parent = parent.set_column(parent.column_names.index("ra"), "ra", pa.array(ra))
    return write_tables(tmp_path / "messy", {**tables, "parent": parent})


@pytest.mark.parametrize("tier", [(), ("tier=train", "tier.n_total_per_split=300", "tier.replicates=2",
                                       "tier.controls=unpaired")])
def test_tiny_buckets_and_batches_give_the_bytes_of_one_bucket(run4a, messy, tmp_path, monkeypatch, tier):
    opts = (*SMALL, *tier, "manifest.shard_max_tasks=300")
    _, one = run4a(*opts, paths=messy, root=tmp_path / "one")
    monkeypatch.setattr(buckets, "MAX_BATCH_ROWS", 23)
    _, many = run4a(*opts, "manifest.bucket_rows=31", paths=messy, root=tmp_path / "many")
    a, b = _digests(tmp_path / "one"), _digests(tmp_path / "many")
    assert a == b
    assert sum(".parquet" in k for k in a) > 6 and sum(k.endswith(".csv") for k in a) > 3
    assert one["funnel"] == many["funnel"] and one["warnings"] == many["warnings"]
    assert any("duplicate rows" in w for w in one["warnings"])
    assert any("impossible coordinates" in w for w in one["warnings"])
    assert not [p for p in (tmp_path / "many").rglob(".buckets-*")]  # the scratch folder is gone


def test_bucket_count_follows_bucket_rows():
    assert buckets.n_buckets(0, 10) == 1
    assert buckets.n_buckets(95, 10) == 10
    assert buckets.n_buckets(10**9, 10) == buckets.MAX_BUCKETS

