import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _isolated_db(tmp_path, monkeypatch):
    """No test writes to the user's results.duckdb."""
    monkeypatch.setenv("MODELPICK_DB", str(tmp_path / "test.duckdb"))
    from engine.backends import fake

    fake.clear()
    yield


@pytest.fixture
def store(tmp_path):
    from engine.store import Store

    return Store(tmp_path / "test.duckdb")


@pytest.fixture(scope="session")
def smollm2_path():
    from engine.catalog import bundled_path

    return bundled_path("smollm2-135m")


@pytest.fixture
def cli_env(tmp_path):
    env = dict(os.environ)
    env["MODELPICK_DB"] = str(tmp_path / "cli.duckdb")
    env["PYTHONPATH"] = str(ROOT)
    return env
