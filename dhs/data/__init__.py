"""Package data: the embedded COSMOS galaxies (see SOURCES.md)."""
