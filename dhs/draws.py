"""Counter-based hashing: task ids and frozen per-task random draws, vectorized over NumPy arrays.

Nothing here holds state: every value is a pure function of its inputs, so results never depend
on row order, sharding or the number of workers.

Construction
------------
* ``hash_str(s)``: the first 8 bytes of ``blake2b(s, digest_size=8)``, little-endian, as uint64.
  Columns of strings are dictionary-encoded first, so blake2b runs once per distinct value.
* ``mix(x)``: the splitmix64 finalizer (a bijection on uint64 with full avalanche).
* ``combine(h, v) = mix(h ^ v)``: folds one more uint64 field into a running hash.
* ``salt_key(salt, seed) = hash_str(f"{salt}/{seed}")``: one constant per named draw and seed.
* A task's 128-bit key is two independent chains (starting from ``salt_key("task_id.hi"|"lo", 0)``)
  over its defining fields, in this order: experiment_id, selection_set_id, region_split,
  brickname (strings, via hash_str), ra, dec (IEEE-754 float64 bit patterns, -0.0 as 0.0),
  config_id (string), replicate, is_control (integers). ``task_id`` is the 32 lowercase hex
  digits of (hi, lo), big-endian.
* The draw key of a task is the first 64 bits of its task_id (``hi``). A uniform draw is
  ``u = (mix(key ^ salt_key(salt, seed)) >> 11) * 2**-53`` in [0, 1); a normal draw is
  ``ndtri`` of the same 53 bits shifted by half a step, in (0, 1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

U64 = np.uint64
_GOLDEN = U64(0x9E3779B97F4A7C15)
_M1 = U64(0xBF58476D1CE4E5B9)
_M2 = U64(0x94D049BB133111EB)
_INV53 = 1.0 / float(1 << 53)

#: Named salts of the frozen draws (changing a name re-draws only that quantity).
SALTS = ("src_r", "src_theta", "src_phi", "shear_phi", "lens_e", "lens_phi", "src_gr", "src_rz",
         "task_seed64", "src_mag", "src_reff", "lens_q", "lens_q_light", "lens_pa_light",
         "cosmos_rotation", "cosmos_flip", "arc_photon_noise")
TASK_FIELDS = ("experiment_id", "selection_set_id", "region_split", "brickname", "ra", "dec",
               "config_id", "replicate", "is_control")


def hash_str(s: str) -> int:
    """blake2b (8-byte digest) of a UTF-8 string as an unsigned 64-bit integer."""
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")


def salt_key(salt: str, seed: int) -> np.uint64:
    """The constant of a named salt under a seed."""
    return U64(hash_str(f"{salt}/{int(seed)}"))


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on a uint64 array (wrapping arithmetic)."""
    z = np.asarray(x, dtype=U64) + _GOLDEN
    z = (z ^ (z >> U64(30))) * _M1
    z = (z ^ (z >> U64(27))) * _M2
    return z ^ (z >> U64(31))


def combine(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    return mix(np.asarray(h, dtype=U64) ^ np.asarray(v, dtype=U64))


def hash_strings(values: pa.Array | pa.ChunkedArray | Sequence[str]) -> np.ndarray:
    """hash_str of every element (nulls hash as the empty string), one blake2b per distinct value."""
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = pc.dictionary_encode(arr.cast(pa.string()), null_encoding="encode")
    uniq = np.fromiter((hash_str(s or "") for s in enc.dictionary.to_pylist()), dtype=U64,
                       count=len(enc.dictionary))
    idx = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    return uniq[idx] if len(uniq) else np.zeros(len(arr), dtype=U64)


def float_bits(x: np.ndarray) -> np.ndarray:
    """IEEE-754 bit pattern of float64 values as uint64 (-0.0 folded onto 0.0)."""
    x = np.asarray(x, dtype=np.float64) + 0.0
    return x.view(U64)


def task_keys(fields: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) uint64 keys of tasks from per-field uint64 arrays (see the module docstring).

    ``fields`` maps every name of TASK_FIELDS to a uint64 array (or a scalar broadcast to the rows):
    strings already passed through hash_str, floats through float_bits, integers as uint64.
    """
    n = max(np.size(v) for v in fields.values())
    hi = np.full(n, salt_key("task_id.hi", 0), dtype=U64)
    lo = np.full(n, salt_key("task_id.lo", 0), dtype=U64)
    for name in TASK_FIELDS:
        v = np.broadcast_to(np.asarray(fields[name], dtype=U64), (n,))
        hi = combine(hi, v)
        lo = combine(lo, v ^ _GOLDEN)
    return hi, lo


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def hex_ids(hi: np.ndarray, lo: np.ndarray) -> pa.StringArray:
    """32-character lowercase hex strings of (hi, lo), built without per-row Python."""
    n = len(hi)
    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, :8] = np.asarray(hi, dtype=">u8").view(np.uint8).reshape(n, 8)
    raw[:, 8:] = np.asarray(lo, dtype=">u8").view(np.uint8).reshape(n, 8)
    out = np.empty((n, 32), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    offsets = np.arange(0, 32 * (n + 1), 32, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())
                                            ).cast(pa.string())


def draw_key_from_task_ids(task_ids: pa.Array | pa.ChunkedArray | Sequence[str]) -> np.ndarray:
    """The draw key (first 64 bits) of 32-hex-digit task ids, vectorized.

    Raises ValueError if an id is not 32 lowercase hex digits.
    """
    arr = task_ids if isinstance(task_ids, (pa.Array, pa.ChunkedArray)) else pa.array(task_ids, pa.string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype=U64)
    ok = pc.match_substring_regex(arr, "^[0-9a-f]{32}$").fill_null(False)
    if not pc.all(ok).as_py():
        bad = arr.filter(pc.invert(ok))[0].as_py()
        raise ValueError(f"task_id {bad!r} is not 32 lowercase hex digits")
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset: arr.offset + n + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]].reshape(n, 32)
    nib = np.where(data[:, :16] >= ord("a"), data[:, :16] - ord("a") + 10,
                   data[:, :16] - ord("0")).astype(U64)
    key = np.zeros(n, dtype=U64)
    for j in range(16):
        key = (key << U64(4)) | nib[:, j]
    return key


def uniform(key: np.ndarray, salt: str, seed: int) -> np.ndarray:
    """Uniform draws in [0, 1) from (key, named salt, seed)."""
    h = mix(np.asarray(key, dtype=U64) ^ salt_key(salt, seed))
    return (h >> U64(11)).astype(np.float64) * _INV53


def normal(key: np.ndarray, salt: str, seed: int) -> np.ndarray:
    """Standard-normal draws (inverse CDF of a hashed uniform in (0, 1))."""
    h = mix(np.asarray(key, dtype=U64) ^ salt_key(salt, seed))
    from scipy.special import ndtri  # scipy.special takes a quarter second to import

    return ndtri(((h >> U64(11)).astype(np.float64) + 0.5) * _INV53)


def seed64(key: np.ndarray, seed: int) -> np.ndarray:
    """A signed 64-bit per-task seed (the same bits as the unsigned hash)."""
    return mix(np.asarray(key, dtype=U64) ^ salt_key("task_seed64", seed)).view(np.int64)


def frozen_draws(key: np.ndarray, theta_e: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The frozen per-task draws of an injection (angles in rad, offsets in arcsec).

    src offset radius sqrt(u) * 0.8 * theta_E at a uniform angle, as (East, North); source, shear
    and lens position angles uniform in [0, pi) East of North; lens ellipticity uniform in [0.05, 0.5]; source colours
    g-r ~ N(0.2, 0.2), r-z ~ N(0.1, 0.2), clipped to [-0.5, 1.5] mag.
    """
    r = np.sqrt(uniform(key, "src_r", seed)) * 0.8 * np.asarray(theta_e, dtype=np.float64)
    ang = 2.0 * np.pi * uniform(key, "src_theta", seed)
    return {
        "src_x_arcsec": r * np.cos(ang),
        "src_y_arcsec": r * np.sin(ang),
        "src_phi_rad": np.pi * uniform(key, "src_phi", seed),
        "shear_phi_rad": np.pi * uniform(key, "shear_phi", seed),
        "lens_e": 0.05 + 0.45 * uniform(key, "lens_e", seed),
        "lens_phi_rad": np.pi * uniform(key, "lens_phi", seed),
        "src_gr": np.clip(0.2 + 0.2 * normal(key, "src_gr", seed), -0.5, 1.5),
        "src_rz": np.clip(0.1 + 0.2 * normal(key, "src_rz", seed), -0.5, 1.5),
        "task_seed64": seed64(key, seed),
    }
