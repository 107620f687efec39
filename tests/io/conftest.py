"""Fixtures of the tests that read synthetic 4c outputs (see tests.synth4c)."""

from tests.synth4c import ctx, experiment, frame  # noqa: F401
