"""The DR10 LRG parent sample: DESI LRG selection on sweep/tractor catalogs, regions and splits.

``lrg`` (the cuts, pure NumPy), ``units`` (depth and PSF-size unit checks), ``fitstable`` (row
chunks of FITS tables, local/S3/HTTP), ``regions`` (HEALPix regions, hashed splits, selection
sets), ``catalog`` (one catalog file -> parent rows and brick sums) and ``tables`` (brick and
region tables) make up stage ``parent``.
"""
