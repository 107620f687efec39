"""Spark memory settings of an EMR run, sized from the workload.

Every Python worker of an executor holds the science stack (~0.7 GB resident) plus, with
``source=cosmos``, the whole COSMOS bank (its size on disk: ~37 KB per galaxy, 0.74 GB for a
20 000-galaxy bank). An executor with ``spark.executor.cores`` cores runs that many workers, so
YARN's default overhead (10% of the heap) is far too small and containers get killed. Here:

- ``spark.executor.pyspark.memory`` = cores x per-worker, per-worker = 1.25 x (0.7 GB + bank)
  (Spark turns it into a per-worker address-space limit; the 25% is virtual-over-resident
  headroom), rounded up to 64 MB;
- ``spark.executor.memoryOverhead`` = max(384 MB, 10% of the heap) + 512 MB (Arrow buffers,
  native libraries, the PySpark daemon);
- ``spark.executor.memory`` (JVM heap) 2 GB and ``spark.executor.cores`` 4: the JVM only
  schedules and moves small summaries.

YARN asks for heap + overhead + PySpark memory per container. Every key is overridden by
``cluster.spark_conf`` as written (a key given there is never recomputed, except that the
computed keys use the given cores and heap).
"""

from __future__ import annotations

import math
from typing import Mapping, Optional

MB = 1024 * 1024
GB = 1024 * MB
#: Resident memory of one Python worker with the science stack imported (measured).
WORKER_BASE_BYTES = int(0.7 * GB)
#: COSMOS bank bytes per galaxy on disk (HDF5, stamps of the bank's default size), for a bank
#: not written yet.
BANK_BYTES_PER_GALAXY = 37 * 1024
#: Address-space headroom over resident memory of a worker.
WORKER_HEADROOM = 1.25
DEFAULT_CORES = 4
DEFAULT_HEAP_MB = 2048
OVERHEAD_EXTRA_MB = 512


def parse_mb(value: str) -> int:
    """A Spark/JVM memory string (``4g``, ``512m``, ``2048`` = MiB) in MiB."""
    text = str(value).strip().lower().rstrip("b")
    units = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
    if text and text[-1] in units:
        return int(math.ceil(float(text[:-1]) * units[text[-1]]))
    return int(text)


def _round_mb(n_bytes: float, step_mb: int = 64) -> int:
    return int(math.ceil(n_bytes / MB / step_mb) * step_mb)


def worker_bytes(bank_bytes: int) -> int:
    """Address space one Python worker is allowed: headroom x (science stack + COSMOS bank)."""
    return int(WORKER_HEADROOM * (WORKER_BASE_BYTES + max(0, int(bank_bytes))))


def executor_memory_conf(bank_bytes: int, user_conf: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The Spark memory keys for a workload whose workers each hold ``bank_bytes`` of bank.

    ``user_conf`` (``cluster.spark_conf``) wins key by key; cores and heap given there are
    used for the computed keys.
    """
    user = {str(k): str(v) for k, v in (user_conf or {}).items()}
    cores = int(user.get("spark.executor.cores", DEFAULT_CORES))
    heap_mb = parse_mb(user.get("spark.executor.memory", f"{DEFAULT_HEAP_MB}m"))
    pyspark_mb = cores * _round_mb(worker_bytes(bank_bytes))
    overhead_mb = max(384, int(math.ceil(0.10 * heap_mb))) + OVERHEAD_EXTRA_MB
    conf = {"spark.executor.cores": str(cores),
            "spark.executor.memory": f"{heap_mb}m",
            "spark.executor.memoryOverhead": f"{overhead_mb}m",
            "spark.executor.pyspark.memory": f"{pyspark_mb}m"}
    conf.update(user)
    return conf


def container_mb(conf: Mapping[str, str]) -> int:
    """What YARN reserves per executor container (MiB): heap + overhead + PySpark memory."""
    return sum(parse_mb(conf[k]) for k in ("spark.executor.memory", "spark.executor.memoryOverhead",
                                           "spark.executor.pyspark.memory"))


def bank_bytes(source: str, bank_path: Optional[str], default_galaxies: int = 20000) -> tuple[int, str]:
    """(bytes of the COSMOS bank a worker loads, how they were found) for ``source``.

    Sersic sources load no bank (0). A bank that exists is sized on disk (local or S3); one not
    written yet is estimated at ``default_galaxies`` x 37 KB.
    """
    if source != "cosmos":
        return 0, f"source={source}: no COSMOS bank"
    from dhs.io import storage

    if bank_path:
        try:
            if storage.exists(bank_path):
                return storage.size(bank_path), f"COSMOS bank {bank_path} on disk"
        except OSError:
            pass
    return default_galaxies * BANK_BYTES_PER_GALAXY, \
        f"COSMOS bank not found at {bank_path}: estimated for {default_galaxies} galaxies x 37 KB"
