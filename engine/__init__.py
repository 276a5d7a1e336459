"""ModelPick engine: backends, scenarios, checks, runner and store, usable without the UI."""
from . import catalog, compare, cost, ratings, recommend, report, scoring, worker
from .backends import Backend, BackendError, EngineReport, GenParams, register_backend, resolve
from .catalog import bundled_models, get_model, load_catalog
from .checks import CHECKS, CheckResult, run_check
from .runner import Progress, RunConfig, Runner
from .scenarios import Scenario, ScenarioError, list_scenario_ids, list_scenarios, load_scenario
from .store import Store, default_db_path
from .summary import latest_run_id, run_summary

__all__ = [
    "catalog", "compare", "cost", "ratings", "recommend", "report", "scoring", "worker",
    "Backend", "BackendError", "EngineReport", "GenParams", "register_backend", "resolve",
    "bundled_models", "get_model", "load_catalog", "CHECKS", "CheckResult", "run_check",
    "Progress", "RunConfig", "Runner", "Scenario", "ScenarioError", "list_scenario_ids",
    "list_scenarios", "load_scenario", "Store", "default_db_path", "latest_run_id", "run_summary",
]
