"""Reports: plots and rich tables."""
