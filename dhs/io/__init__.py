"""Storage (local paths and s3://), Parquet datasets, atomic commits, HDF5."""
