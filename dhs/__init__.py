"""dhs (Dark Halo Scope): lensed-arc injection into DESI Legacy Imaging Surveys DR10 images."""

__version__ = "0.1.0"
