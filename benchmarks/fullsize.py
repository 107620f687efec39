"""Benchmark fixture: a survey of full-size bricks written like DR10's, in a temporary folder.

``FullSizeSurvey(n_bricks)`` (a context manager) runs the project's own stages on a fresh temporary
data root: the COSMOS bank of the embedded galaxies, the mock survey at ``brick_size_pix=3600``
(the mock survey's writers: 10 files per brick, image and invvar in g, r, z, maskbits with WISEM1
and WISEM2, psfsize in g, r, z, tile-compressed in 100 x 100 tiles as DR10.0.12 does: image
RICE ``qz -1e-4`` with subtractive dither 2, invvar RICE ``q0 16``, maskbits HCOMPRESS, psfsize
GZIP; noise-dominated pixels from the depth, de Vaucouleurs LRG-like galaxies, bright stars and
their masks, a zero-invvar patch), stage 4a manifests of the given tiers and stage 4b's brick
cache. ``describe()`` reads the compression back from the files. Everything is removed on exit.

40 galaxies per brick is about the DR10 LRG density (600 per deg^2 over the 0.0623 deg^2 of a
brick), so 83 tasks per brick repeat each target about twice, as the earlier production's
train set did.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GALAXIES_PER_BRICK = 40


def compose(overrides: list[str]) -> Any:
    from hydra import compose as hcompose
    from hydra import initialize_config_module

    with initialize_config_module(config_module="dhs.conf", version_base=None):
        return hcompose(config_name="config", overrides=list(overrides))


def run_stage(overrides: list[str], run_dir: str | Path) -> dict:
    """A stage through the CLI's own path (config checks included), run directory ``run_dir``."""
    from dhs.cli import run_stage as cli_run_stage
    from dhs.context import make_context

    return cli_run_stage(compose(overrides), make_context(run_dir))


class FullSizeSurvey:
    """Full-size DR10-format bricks, manifests and a brick cache under a temporary root."""

    def __init__(self, n_bricks: int = 6, *, tiers: tuple[str, ...] = ("debug",),
                 stamp_sizes: tuple[int, ...] = (64,), n_per_config: int = 10, n_jobs: int = 1,
                 keep: str | None = None):
        """``keep``: a folder to build in (or reuse, when built before) and leave in place;
        by default a temporary folder, removed on exit."""
        self.n_bricks, self.tiers, self.stamp_sizes = n_bricks, tiers, stamp_sizes
        self.n_per_config, self.n_jobs, self.keep = n_per_config, n_jobs, keep
        self.root: Path | None = None
        self._runs = 0

    # -- set-up and clean-up --------------------------------------------------------------------
    def __enter__(self) -> FullSizeSurvey:
        if self.keep:
            self.root = Path(self.keep).resolve()
            self.root.mkdir(parents=True, exist_ok=True)
            if not (self.root / "_FIXTURE_DONE").exists():
                self._build()
                (self.root / "_FIXTURE_DONE").write_text("built\n")
            shutil.rmtree(self.root / "phase4c", ignore_errors=True)
            shutil.rmtree(self.root / "bench", ignore_errors=True)
            return self
        self.root = Path(tempfile.mkdtemp(prefix="dhs-bench-fullsize-"))
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.root is not None and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    @property
    def base(self) -> list[str]:
        """Overrides every stage of the fixture shares."""
        sizes = ",".join(map(str, self.stamp_sizes))
        return [f"paths.data_root={self.root}", f"mock_survey.n_bricks={self.n_bricks}",
                "mock_survey.n_regions=3", "mock_survey.brick_size_pix=3600",
                f"mock_survey.galaxies_per_brick={GALAXIES_PER_BRICK}", "source=cosmos",
                f"tier.stamp_sizes=[{sizes}]", "tier.bandsets=[grz]"]

    def run_dir(self) -> Path:
        self._runs += 1
        return self.root / "runs" / f"{self._runs:04d}"

    def stage(self, overrides: list[str]) -> dict:
        return run_stage([*self.base, *overrides], self.run_dir())

    def _build(self) -> None:
        jobs = f"cluster.n_jobs={self.n_jobs}"
        self.stage(["stage=cosmos_bank", jobs])
        self.stage(["stage=mock_survey", jobs])
        for tier in self.tiers:
            self.stage(["stage=4a", f"tier={tier}", f"tier.n_per_config={self.n_per_config}", jobs])
        self.stage(["stage=4b", f"tier={self.tiers[0]}", "cluster.n_jobs=1"])

    # -- what the fixture holds -----------------------------------------------------------------
    def experiments(self, tier: str) -> list[str]:
        from dhs.stages import layout

        return layout.experiment_ids(compose([*self.base, "stage=4c", f"tier={tier}"]))

    def manifest(self, tier: str, exp: str) -> pa.Table:
        from dhs.stages import layout
        from dhs.io import datasets as dio

        return dio.read_dataset(layout.manifest_dir(compose([*self.base, "stage=4c", f"tier={tier}"]), exp))

    def write_manifest(self, table: pa.Table, tier: str, exp: str, variant: str) -> None:
        """``table`` as the complete manifest of ``exp`` under ``variant``."""
        from dhs.stages import layout
        from dhs.io import datasets as dio

        mdir = layout.manifest_dir(compose([*self.base, "stage=4c", f"tier={tier}", f"variant={variant}"]), exp)
        dio.write_shard(table, mdir, "00000")
        dio.mark_success(mdir, {"rows": table.num_rows})

    def coadd_files(self) -> list[Path]:
        return sorted((self.root / "mock_survey" / "coadd").rglob("*.fits.fz"))

    def describe(self) -> list[tuple[str, str]]:
        """(file kind, 'shape, tiles, compression, quantization, MB') read back from the files."""
        import fitsio

        out: dict[str, str] = {}
        sizes: dict[str, list[int]] = {}
        for path in self.coadd_files():
            kind = path.name.split("-", 2)[2].replace(".fits.fz", "")
            kind = kind.rsplit("-", 1)[0] if kind.endswith(("-g", "-r", "-z")) else kind
            sizes.setdefault(kind, []).append(path.stat().st_size)
            if kind in out:
                continue
            with fitsio.FITS(str(path)) as f:
                parts = []
                for hdu in f[1:]:
                    h = hdu.read_header()
                    q = h.get("ZQUANTIZ", "")
                    zq = [f"{h.get(f'ZNAME{i}')}={h.get(f'ZVAL{i}')}" for i in range(1, 4) if h.get(f"ZNAME{i}")]
                    parts.append(f"{h.get('EXTNAME', 'ext1')}: {h['ZNAXIS1']}x{h['ZNAXIS2']} tiles "
                                 f"{h['ZTILE1']}x{h['ZTILE2']} {h['ZCMPTYPE']} {q} {' '.join(zq)}".strip())
                out[kind] = "; ".join(parts)
        return [(k, f"{v}; {np.mean(sizes[k]) / 1e6:.1f} MB per file") for k, v in out.items()]


def per_brick(manifest: pa.Table, n: int, *, offset: int = 0, injections_only: bool = True) -> pa.Table:
    """Tasks ``offset .. offset + n - 1`` of every brick (brick, then task_id order)."""
    t = manifest
    if injections_only:
        t = t.filter(pc.equal(t.column("is_control"), 0))
    t = t.take(pc.sort_indices(t, [("brickname", "ascending"), ("task_id", "ascending")]))
    bricks = np.asarray(t.column("brickname").to_pylist())
    starts = np.flatnonzero(np.r_[True, bricks[1:] != bricks[:-1]])
    ends = np.r_[starts[1:], len(bricks)]
    keep = [np.arange(s + offset, min(s + offset + n, e)) for s, e in zip(starts, ends)]
    return t.take(pa.array(np.concatenate(keep).astype(np.int64)))


def distinct_targets(manifest: pa.Table) -> pa.Table:
    """One task per target position (the first by task_id): stamps of distinct sky pixels."""
    t = manifest.take(pc.sort_indices(manifest, [("task_id", "ascending")]))
    ra = np.round(np.asarray(t.column("ra"), float), 7)
    dec = np.round(np.asarray(t.column("dec"), float), 7)
    _, first = np.unique(np.stack([ra, dec], axis=1), axis=0, return_index=True)
    return t.take(pa.array(np.sort(first).astype(np.int64)))
