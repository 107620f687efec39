"""Hydra launcher plugin that submits sweep jobs as EMR steps (``hydra/launcher=dhs_emr``)."""

from __future__ import annotations


def register() -> None:
    """Register the launcher with Hydra explicitly.

    Hydra finds plugins by scanning the ``hydra_plugins`` namespace package, which works for
    wheel installs but not for setuptools' PEP 660 editable installs (an import hook, not a
    directory); dhs calls this on import of ``dhs.config.schema`` so ``hydra/launcher=dhs_emr`` works
    either way.
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.dhs_launcher.emr_launcher import EmrLauncher

    plugins = Plugins.instance()
    if EmrLauncher not in plugins.discover(EmrLauncher.__mro__[1]):
        plugins.register(EmrLauncher)
