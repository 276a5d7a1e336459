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


def collect(backend, messages, **params):
    """(answer text, reasoning text, the final EngineReport) of one streamed generation."""
    from engine.backends import EngineReport, GenParams, Reasoning

    chunks, reasoning, reports = [], [], []
    for item in backend.stream(messages, GenParams(**params)):
        if isinstance(item, EngineReport):
            reports.append(item)
        elif isinstance(item, Reasoning):
            reasoning.append(item.text)
        else:
            chunks.append(item)
    assert len(reports) == 1, "a stream ends with exactly one EngineReport"
    return "".join(chunks), "".join(reasoning), reports[0]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
