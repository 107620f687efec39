"""Pure-NumPy lensing physics: lens models, sources, PSF, rendering, photometry. No I/O."""
