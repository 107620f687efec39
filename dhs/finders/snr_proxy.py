"""``finder=snr_proxy``: the arc-SNR rule, named as what it is.

This is an oracle proxy, not a finder on pixels: its score is the ``arc_snr`` column of the 4c
metrics (the injected arc's own integrated r-band SNR, computed from the noise-free arc that only
the injection knows), so it can exist only for simulated stamps and it never looks at a stamp.
A stamp counts as found when ``arc_snr >= arc_snr_min`` (default 5). There is no resolution cut:
the earlier rule's ``theta_E / PSF >= 0.8`` was a statement about the injection parameters, not a
measurement, and is gone. Controls have no arc: their ``arc_snr`` is null and 4d scores them 0 (the
SNR of an absent arc), so the oracle never flags one. Use it to compare a real finder
with the SNR an ideal, arc-knowing detector would need; never as the completeness of a search.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from dhs.finders import base
from dhs.finders.settings import SnrProxySettings  # noqa: F401  (numpy-free, read by the config)

#: The metrics column the proxy reads (it is the only finder that reads one).
INPUT_COLUMN = "arc_snr"


class SnrProxy:
    """Scores = arc_snr; its natural threshold is ``arc_snr_min``."""

    name = "snr_proxy"

    def __init__(self, settings: SnrProxySettings | None = None):
        self._settings = settings or SnrProxySettings()

    @property
    def settings(self) -> dict[str, Any]:
        return asdict(self._settings)

    @property
    def checksum(self) -> str:
        return ""

    @property
    def threshold(self) -> float:
        return float(self._settings.arc_snr_min)

    def __call__(self, arc_snr: np.ndarray) -> base.FinderResult:
        snr = np.asarray(arc_snr, dtype=np.float64)
        return base.finish(snr, snr.shape[0], who="snr_proxy")
