"""Fixtures of the finder tests: LRG cutouts of the session's mock survey."""

from __future__ import annotations

import pytest

from tests.finders.mock_stamps import mock_cutouts


@pytest.fixture(scope="session")
def cutouts(mini_root):
    """64x64 grz cutouts around every LRG of the session's 3-brick mock survey."""
    return mock_cutouts(mini_root)


from tests.synth4c import ctx, experiment, frame  # noqa: E402, F401  (synthetic 4c outputs for stage=score)
