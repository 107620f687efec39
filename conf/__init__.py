"""The dhs Hydra config tree. Importing it registers the structured-config schemas."""

from dhs.config import schema as _config  # noqa: F401
