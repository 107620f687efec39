"""DR10 knowledge: bricks, WCS, file names and URLs, maskbits, FITS readers."""
