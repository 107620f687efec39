"""The dhs Hydra config tree. Importing it registers the structured-config schemas."""

from dhs import config as _config  # noqa: F401
