"""Hydra launcher plugin that submits sweep jobs as EMR steps."""
