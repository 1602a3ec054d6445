"""The one place swarm reaches into Hydra's internals: expanding a basic sweep into its jobs.

`collect` must know every job a multirun planned, numbered as Hydra numbered them, to list the
ones that never started. Hydra has no public API for that: its BasicSweeper's expansion, and the
config loader a `glob(...)` over a config group needs, live under `hydra._internal`. They are used
here and nowhere else; tests/test_collect.py fails, naming this function, if Hydra changes them.
"""

from __future__ import annotations

import os


def expand_basic_sweep(mr: dict, overrides: list[str]) -> list[list[str]]:
    """Each job's task overrides, in Hydra's job-number order, as the basic sweeper expands
    `overrides` with a config loader built from the multirun's own search path (`mr`, the
    multirun.yaml); a search path that cannot be rebuilt still expands plain sweeps."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.plugins import Plugins

    try:
        Plugins.instance()  # registers the config sources (pkg://, file://, structured://)
        search = ConfigSearchPathImpl()
        cwd = mr["hydra"]["runtime"].get("cwd") or "."
        for s in mr["hydra"]["runtime"]["config_sources"]:
            path = s["path"]
            if s["schema"] == "file" and not os.path.isabs(path):
                path = os.path.join(cwd, path)
            search.append(s["provider"], f"{s['schema']}://{path}")
        loader = ConfigLoaderImpl(config_search_path=search)
    except Exception:  # an unusual search path: plain sweeps still parse without a loader
        loader = None
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(overrides)
    return [list(job) for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
