"""ModelPick engine: backends, scenarios, checks, runner and store, usable without the UI.

Its names are imported when first used (PEP 562), so `python -m engine` starts its command line, and
its Ctrl-C handling, before the heavy imports run."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_SUBMODULES = ("catalog", "compare", "cost", "ratings", "recommend", "report", "scoring", "worker")
_NAMES = {
    "backends": ("Backend", "BackendError", "EngineReport", "GenParams", "register_backend", "resolve"),
    "catalog": ("bundled_models", "get_model", "load_catalog"),
    "checks": ("CHECKS", "CheckResult", "run_check"),
    "runner": ("Progress", "RunConfig", "Runner"),
    "scenarios": ("Scenario", "ScenarioError", "list_scenario_ids", "list_scenarios", "load_scenario"),
    "store": ("Store", "default_db_path"),
    "summary": ("latest_run_id", "run_summary"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}

__all__ = [*_SUBMODULES, *_WHERE]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:  # what the names are, for type checkers
    from . import catalog, compare, cost, ratings, recommend, report, scoring, worker  # noqa: F401
    from .backends import Backend, BackendError, EngineReport, GenParams, register_backend, resolve  # noqa: F401
    from .catalog import bundled_models, get_model, load_catalog  # noqa: F401
    from .checks import CHECKS, CheckResult, run_check  # noqa: F401
    from .runner import Progress, RunConfig, Runner  # noqa: F401
    from .scenarios import Scenario, ScenarioError, list_scenario_ids, list_scenarios, load_scenario  # noqa: F401
    from .store import Store, default_db_path  # noqa: F401
    from .summary import latest_run_id, run_summary  # noqa: F401
