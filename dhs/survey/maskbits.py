"""DR10 MASKBITS (coadd maskbits HDU1 and the catalog MASKBITS column, int32), bits 0 to 16.

Source: legacypipe ``bits.py`` at DR10.0.12 (DR10_REFERENCE section 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

NPRIMARY = 1 << 0
BRIGHT = 1 << 1
SATUR_G = 1 << 2
SATUR_R = 1 << 3
SATUR_Z = 1 << 4
ALLMASK_G = 1 << 5
ALLMASK_R = 1 << 6
ALLMASK_Z = 1 << 7
WISEM1 = 1 << 8
WISEM2 = 1 << 9
BAILOUT = 1 << 10
MEDIUM = 1 << 11
GALAXY = 1 << 12
CLUSTER = 1 << 13
SATUR_I = 1 << 14
ALLMASK_I = 1 << 15
SUB_BLOB = 1 << 16

NAMES = {
    "NPRIMARY": NPRIMARY, "BRIGHT": BRIGHT, "SATUR_G": SATUR_G, "SATUR_R": SATUR_R,
    "SATUR_Z": SATUR_Z, "ALLMASK_G": ALLMASK_G, "ALLMASK_R": ALLMASK_R, "ALLMASK_Z": ALLMASK_Z,
    "WISEM1": WISEM1, "WISEM2": WISEM2, "BAILOUT": BAILOUT, "MEDIUM": MEDIUM, "GALAXY": GALAXY,
    "CLUSTER": CLUSTER, "SATUR_I": SATUR_I, "ALLMASK_I": ALLMASK_I, "SUB_BLOB": SUB_BLOB,
}

SATUR = {"g": SATUR_G, "r": SATUR_R, "i": SATUR_I, "z": SATUR_Z}
ALLMASK = {"g": ALLMASK_G, "r": ALLMASK_R, "i": ALLMASK_I, "z": ALLMASK_Z}

#: Bad in every band: outside the primary area, bright/medium star masks, fitting bail-out.
BAD_COMMON = NPRIMARY | BRIGHT | BAILOUT | MEDIUM
#: Bad for any of g, r, z: the common set plus saturation and ALLMASK in those bands.
BAD_ALL_BANDS = BAD_COMMON | SATUR_G | SATUR_R | SATUR_Z | ALLMASK_G | ALLMASK_R | ALLMASK_Z
#: Bad for r-band measurements (arc_snr is r-band): common set plus r saturation and ALLMASK_R.
BAD_R = BAD_COMMON | SATUR_R | ALLMASK_R
#: WISE bright-star masks (not detections).
WISE = WISEM1 | WISEM2


def bad_for_band(band: str) -> int:
    """Bits that make a pixel unusable for a measurement in ``band``."""
    return BAD_COMMON | SATUR[band] | ALLMASK[band]


def any_set(maskbits: np.ndarray, bits: int) -> np.ndarray:
    """Boolean array: True where any of ``bits`` is set."""
    import numpy as np

    return (np.asarray(maskbits).astype(np.int64) & int(bits)) != 0
