"""Shared helpers for the physics tests: synthetic COSMOS-like templates and a
lenstronomy oracle for images."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


def cosmos_like(rng: np.random.Generator, n: int, size: int = 96,
                noise: float = 2e-3) -> np.ndarray:
    """(n, size, size) clumpy galaxies with Gaussian noise (flux per pixel, unnormalized)."""
    yy, xx = np.mgrid[:size, :size] - 0.5 * (size - 1)
    out = np.empty((n, size, size))
    for k in range(n):
        q = rng.uniform(0.4, 1.0)
        pa = rng.uniform(0, np.pi)
        xr = np.cos(pa) * xx + np.sin(pa) * yy
        yr = -np.sin(pa) * xx + np.cos(pa) * yy
        re = rng.uniform(4.0, 12.0)
        img = np.exp(-np.hypot(xr * np.sqrt(q), yr / np.sqrt(q)) / re)
        for _ in range(rng.integers(2, 7)):
            cx, cy = rng.normal(0, 1.5 * re, 2)
            w = rng.uniform(1.0, 3.0)
            img += rng.uniform(0.1, 0.6) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * w * w))
        out[k] = img + rng.normal(0, noise, (size, size))
    return out


@pytest.fixture
def make_templates() -> Callable[..., np.ndarray]:
    return cosmos_like


def lenstronomy_image(
    lens_kw: dict | None,
    light: str,
    light_kw: dict,
    kernel: np.ndarray,
    stamp_size: int,
    pixscale: float,
    supersample: int,
) -> np.ndarray:
    """Image (flux per pixel) from a freshly built lenstronomy ImageModel."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel

    c0 = -0.5 * (stamp_size - 1) * pixscale
    data = ImageData(image_data=np.zeros((stamp_size, stamp_size)), ra_at_xy_0=c0,
                     dec_at_xy_0=c0, transform_pix2angle=np.eye(2) * pixscale)
    psf = PSF(psf_type="PIXEL", kernel_point_source=kernel)
    lens_model = LensModel(["SIE", "SHEAR"]) if lens_kw is not None else LensModel([])
    model = ImageModel(data, psf, lens_model_class=lens_model,
                       source_model_class=LightModel([light]),
                       kwargs_numerics={"supersampling_factor": supersample,
                                        "supersampling_convolution": False})
    kwargs_lens = lens_kw if lens_kw is not None else []
    return model.image(kwargs_lens=kwargs_lens, kwargs_source=[light_kw])


@pytest.fixture
def lenstronomy_oracle() -> Callable[..., np.ndarray]:
    return lenstronomy_image
