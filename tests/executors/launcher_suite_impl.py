"""Hydra's own launcher test suites run against ``hydra/launcher=dhs_emr`` (mode=local).

Not collected by the main run (the file name has no ``test_`` prefix): tests/executors/test_launcher.py
runs it in its own pytest process with ``launchers/`` on PYTHONPATH, the way a wheel install
lays out the ``hydra_plugins`` namespace, so Hydra finds the plugin by its own scan.
"""

from __future__ import annotations

from hydra.core.plugins import Plugins
from hydra.plugins.launcher import Launcher
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite
from pytest import mark

from hydra_plugins.dhs_launcher.emr_launcher import EmrLauncher


def test_discovery() -> None:
    assert EmrLauncher.__name__ in [x.__name__ for x in Plugins.instance().discover(Launcher)]


@mark.parametrize("launcher_name, overrides", [("dhs_emr", ["hydra.launcher.mode=local"])])
class TestDhsEmrLauncher(LauncherTestSuite):
    pass


@mark.parametrize("task_launcher_cfg, extra_flags",
                  [({}, ["-m", "hydra/launcher=dhs_emr", "hydra.launcher.mode=local"])])
class TestDhsEmrLauncherIntegration(IntegrationTestSuite):
    pass
