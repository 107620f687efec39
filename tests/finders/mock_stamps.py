"""Stamps for the finder tests: 64x64 grz cutouts of the embedded mock survey around its LRGs
(read from the DR10-format files the mock_survey stage wrote), and the same cutouts with arcs
rendered by dhs's renderer (SIE lens, Sersic source, Moffat PSF of the local psfsize map)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

BANDS = ("g", "r", "z")
PIXSCALE = 0.262


@dataclass
class Cutouts:
    """LRG-centred stamps: images/invvar (n, 3, S, S), maskbits (n, S, S), psf FWHM (n, 3) arcsec,
    lens r magnitude (n,)."""

    images: np.ndarray
    invvar: np.ndarray
    maskbits: np.ndarray
    psf: np.ndarray
    rmag: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def take(self, idx: np.ndarray) -> "Cutouts":
        return Cutouts(self.images[idx], self.invvar[idx], self.maskbits[idx], self.psf[idx], self.rmag[idx])


def _read(path: Path) -> tuple[np.ndarray, object]:
    from astropy.io import fits
    from astropy.wcs import WCS

    with fits.open(path) as hdul:
        hdu = next(h for h in hdul if getattr(h, "data", None) is not None and h.data.ndim == 2)
        return np.asarray(hdu.data), WCS(hdu.header)


def mock_cutouts(root: Path, size: int = 64) -> Cutouts:
    """Cutouts around every parent-catalog galaxy of the mock survey under ``root`` that fits in its
    brick."""
    import pyarrow.parquet as pq

    from dhs.survey.files import coadd_relpath
    from dhs.survey.wcs import nearest_pixel
    from dhs.survey.windows import cut_array

    parent = pq.read_table(root / "mock_survey" / "tables" / "parent_catalog.parquet").to_pandas()
    coadd = root / "mock_survey" / "coadd"
    out: dict[str, list] = {"images": [], "invvar": [], "maskbits": [], "psf": [], "rmag": []}
    for brick, rows in parent.groupby("brickname", sort=True):
        files = {(k, b): _read(coadd / coadd_relpath(brick, k, b))[0]
                 for k in ("image", "invvar", "psfsize") for b in BANDS}
        mask, wcs = _read(coadd / coadd_relpath(brick, "maskbits"))
        ix, iy = nearest_pixel(_read(coadd / coadd_relpath(brick, "image", "r"))[1],
                               rows["ra"].to_numpy(), rows["dec"].to_numpy())
        for k in range(len(rows)):
            cuts = [cut_array(files[("image", b)], int(ix[k]), int(iy[k]), size) for b in BANDS]
            if not all(c.ok for c in cuts):
                continue
            out["images"].append(np.stack([c.data for c in cuts]))
            out["invvar"].append(np.stack([cut_array(files[("invvar", b)], int(ix[k]), int(iy[k]), size).data
                                           for b in BANDS]))
            out["maskbits"].append(cut_array(mask, int(ix[k]), int(iy[k]), size).data)
            out["psf"].append([float(files[("psfsize", b)][int(iy[k]), int(ix[k])]) for b in BANDS])
            out["rmag"].append(float(rows["rmag"].iloc[k]))
    return Cutouts(np.asarray(out["images"], np.float32), np.asarray(out["invvar"], np.float32),
                   np.asarray(out["maskbits"], np.int32), np.asarray(out["psf"]), np.asarray(out["rmag"]))


def arcs(cut: Cutouts, theta_e: np.ndarray, src_dmag: np.ndarray, seed: int, reff: float = 0.2) -> np.ndarray:
    """Arcs (n, 3, S, S) in nanomaggies for the cutouts: SIE (q 0.7-1) + no shear, a round-ish
    Sersic (n = 1) source of r magnitude lens r + src_dmag (g-r 0.2, r-z 0.1) offset by up to
    0.3 theta_E, each band convolved with its Moffat PSF (beta 3.5)."""
    from dhs.physics.lens import LensBatch
    from dhs.physics.photometry import mag_to_nmgy
    from dhs.physics.render import render_batch, stamp_center_offset
    from dhs.physics.source import SersicBatch

    n, size = len(cut), cut.images.shape[-1]
    rng = np.random.default_rng(seed)
    cx, cy = stamp_center_offset(size, PIXSCALE)
    lens = LensBatch.from_q_phi(theta_E=np.asarray(theta_e, float), q=rng.uniform(0.7, 1.0, n),
                                phi=rng.uniform(0, np.pi, n), gamma=np.zeros(n), phi_gamma=np.zeros(n),
                                center_x=cx, center_y=cy)
    r = 0.3 * np.asarray(theta_e, float) * np.sqrt(rng.uniform(0, 1, n))
    a = rng.uniform(0, 2 * np.pi, n)
    src = SersicBatch(R_sersic=np.full(n, reff), n_sersic=np.ones(n), e1=np.zeros(n), e2=np.zeros(n),
                      x=r * np.cos(a), y=r * np.sin(a))
    mag_r = cut.rmag + np.asarray(src_dmag, float)
    mags = {"g": mag_r + 0.2, "r": mag_r, "z": mag_r - 0.1}
    res = render_batch(lens, src, {b: mag_to_nmgy(mags[b]) for b in BANDS},
                       {b: cut.psf[:, j] for j, b in enumerate(BANDS)}, stamp_size=size, pixscale=PIXSCALE)
    return np.stack([res.images[b] for b in BANDS], axis=1).astype(np.float32)
