"""A user's trained network, exported to ONNX, as a lens finder (onnxruntime).

Any framework that exports ONNX works (PyTorch ``torch.onnx.export``, TensorFlow via tf2onnx,
JAX via jax2onnx, ...). The network takes one float32 tensor ``(n, bands, size, size)`` (the
stamp's image in the band order of the stamps, after the normalisation below) and returns one
score per stamp: shape (n,), (n, 1) or (n, k) (column ``class_index`` of k classes).

Settings (:class:`OnnxFinderSettings`):

- ``model``: path or ``s3://`` URI of the .onnx file; its sha256 is recorded with the scores;
- ``normalisation``: ``none`` (nanomaggies as they are), ``asinh`` (``asinh(x / scale_b)``), or
  ``per_band_scale`` (``(x - offset_b) / scale_b``); ``scale`` and ``offset`` hold one value per
  band (or one for all). Pixels without data (invvar 0 or not finite) enter as 0;
- ``output``: ``logit`` (scores are sigmoid(logit), or the softmax over k classes) or
  ``probability``; scores are reported as probabilities either way;
- ``batch_size``: stamps per inference call (a model exported with a fixed batch dimension is
  fed batches of exactly that size, the last one padded);
- ``provider``: ``auto`` (CUDA when onnxruntime reports ``CUDAExecutionProvider``, else CPU),
  ``cpu`` or ``cuda``; ``threads``: intra-op threads (1 suits one worker process per core).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from typing import Any, Sequence

import numpy as np

from dhs.finders import base
from dhs.finders.settings import NORMALISATIONS, OUTPUTS, PROVIDERS, OnnxFinderSettings  # noqa: F401  (numpy-free, read by the config)


def providers(choice: str) -> list[str]:
    """onnxruntime execution providers for ``choice`` (auto: CUDA first when available)."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    if choice == "cuda" and "CUDAExecutionProvider" not in have:
        raise base.FinderError(f"finder.provider=cuda, but onnxruntime offers only {have}; install "
                               f"onnxruntime-gpu or set finder.provider=auto")
    if choice in ("cuda", "auto") and "CUDAExecutionProvider" in have:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _per_band(values: Sequence[float], nb: int, key: str) -> np.ndarray:
    v = np.asarray([float(x) for x in values], dtype=np.float32)
    if v.size == 1:
        return np.full(nb, v[0], np.float32)
    if v.size != nb:
        raise base.FinderError(f"finder.{key} has {v.size} values, the stamps have {nb} bands; give one per "
                               f"band or a single value")
    return v


def normalise(images: np.ndarray, invvar: np.ndarray, st: OnnxFinderSettings) -> np.ndarray:
    """The network's input (n, B, S, S) float32 from the images (nanomaggies)."""
    nb = images.shape[1]
    x = np.where(np.isfinite(images) & np.isfinite(invvar) & (invvar > 0), images, 0.0).astype(np.float32)
    if st.normalisation == "asinh":
        x = np.arcsinh(x / _per_band(st.scale, nb, "scale")[None, :, None, None])
    elif st.normalisation == "per_band_scale":
        off = _per_band(st.offset, nb, "offset")[None, :, None, None]
        x = (x - off) / _per_band(st.scale, nb, "scale")[None, :, None, None]
    return np.ascontiguousarray(x, dtype=np.float32)


def to_probability(out: np.ndarray, n: int, st: OnnxFinderSettings) -> np.ndarray:
    """Scores (n,) as probabilities from the network's raw output."""
    a = np.asarray(out, dtype=np.float64)
    if a.ndim == 1 or (a.ndim == 2 and a.shape[1] == 1):
        a = a.reshape(-1)
        if a.shape[0] != n:
            raise base.FinderError(f"the ONNX model returned {a.shape[0]} scores for {n} stamps")
        return 1.0 / (1.0 + np.exp(-a)) if st.output == "logit" else a
    if a.ndim != 2 or a.shape[0] != n:
        raise base.FinderError(f"the ONNX model returned shape {a.shape}; a finder needs (n,), (n, 1) or (n, k)")
    k = a.shape[1]
    if not -k <= st.class_index < k:
        raise base.FinderError(f"finder.class_index={st.class_index} but the model has {k} output classes")
    if st.output == "logit":
        z = a - a.max(axis=1, keepdims=True)
        a = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return a[:, st.class_index]


class OnnxFinder:
    """An ONNX network as a :class:`dhs.finders.base.Finder` (the session opens on first use)."""

    name = "onnx"

    def __init__(self, settings: OnnxFinderSettings, model_bytes: bytes | None = None):
        self._settings = settings
        self._bytes = model_bytes
        self._session: Any = None
        self._sha = hashlib.sha256(model_bytes).hexdigest() if model_bytes is not None else ""

    def _load(self) -> Any:
        if self._session is not None:
            return self._session
        import onnxruntime as ort

        if self._bytes is None:
            from dhs.io import storage

            try:
                self._bytes = storage.read_bytes(self._settings.model)
            except (OSError, FileNotFoundError) as exc:
                raise base.FinderError(f"finder.model={self._settings.model}: cannot read the ONNX file ({exc}); "
                                       f"point finder.model at an exported .onnx network") from exc
            self._sha = hashlib.sha256(self._bytes).hexdigest()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(self._settings.threads)
        opts.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(self._bytes, sess_options=opts,
                                                 providers=providers(self._settings.provider))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad models
            raise base.FinderError(f"finder.model={self._settings.model} is not a model onnxruntime can run "
                                   f"({type(exc).__name__}: {exc})") from exc
        if len(self._session.get_inputs()) != 1:
            raise base.FinderError(f"finder.model={self._settings.model} has {len(self._session.get_inputs())} "
                                   f"inputs; a finder network takes one (n, bands, size, size) tensor")
        return self._session

    @property
    def settings(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self._settings).items()}

    @property
    def checksum(self) -> str:
        if not self._sha:
            self._load()
        return self._sha

    @property
    def providers(self) -> list[str]:
        return list(self._load().get_providers())

    def __call__(self, images: np.ndarray, invvar: np.ndarray, maskbits: np.ndarray, *,
                 bands: Sequence[str], pixscale: float) -> base.FinderResult:
        img, iv, _, bands = base.check_batch(images, invvar, maskbits, bands, pixscale)
        sess = self._load()
        inp = sess.get_inputs()[0]
        shape = list(inp.shape)
        n, nb, size, _ = img.shape
        if len(shape) != 4:
            raise base.FinderError(f"finder.model={self._settings.model} takes a rank-{len(shape)} input "
                                   f"{shape}; a finder network takes (n, bands, size, size)")
        for axis, have, what in ((1, nb, "bands"), (2, size, "size"), (3, size, "size")):
            if isinstance(shape[axis], int) and shape[axis] != have:
                raise base.FinderError(f"finder.model={self._settings.model} expects input {shape} but the "
                                       f"stamps are ({n}, {nb}, {size}, {size}): {what} differ")
        fixed = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
        step = fixed or int(self._settings.batch_size)
        x = normalise(img, iv, self._settings)
        out = []
        for i in range(0, n, step):
            chunk = x[i:i + step]
            m = chunk.shape[0]
            if fixed and m < fixed:
                chunk = np.concatenate([chunk, np.zeros((fixed - m,) + chunk.shape[1:], np.float32)])
            res = sess.run(None, {inp.name: chunk})[0]
            out.append(np.asarray(res)[:m])
        raw = np.concatenate(out) if out else np.zeros((0,), np.float32)
        return base.finish(to_probability(raw, n, self._settings), n, who=f"finder.model={self._settings.model}",
                           failed=base.empty_pixels(img, iv))
