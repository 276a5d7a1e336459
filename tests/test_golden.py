"""The same database and options give the same decision and summary, byte for byte: a saved
database of a real run (the two bundled models on customer-service through llama.cpp) against
summaries written by this code. What depends on the machine the test runs on (the GGUF files' paths
and hashes, the measured memory bandwidth) is fixed first.

A change meant to alter the summary rewrites them: MODELPICK_WRITE_GOLDEN=1 pytest tests/test_golden.py
(then read the diff before committing it)."""
import os
import shutil

import pytest

from engine import Store, report
from engine.cost import Traffic
from engine.recommend import Constraints, CostInputs, recommend
from tests.conftest import ROOT

GOLDEN = ROOT / "tests" / "data" / "golden"
OPTIONS = {
    "defaults": {},  # the run was flagged busy: decided without its timings
    "trusted": {"trust_timings": True},  # the timings weighed anyway, said at the top
    "weights": {"weights": {"quality": 0.7, "ttft": 0.1, "latency": 0.1, "throughput": 0.1}},
    "constraints": {"constraints": Constraints(max_vram_gb=1.25, ttft_p95_ms=5000, min_quality=0.2)},
    "gpu": {"cost_inputs": CostInputs(gpu="L4", currency="CNY",
                                      traffic=Traffic(50_000, 8, 12.0, 3.0))},
}


@pytest.fixture
def saved(tmp_path, monkeypatch):
    from engine import bound, catalog

    monkeypatch.setattr(catalog, "model_identity", lambda spec: {"spec": spec, "sha256": "fixed"})
    monkeypatch.setattr(bound, "run_bandwidth", lambda host, config, spec: bound.Bandwidth(20.0, "fixed"))
    path = tmp_path / "decision.duckdb"
    shutil.copy(ROOT / "tests" / "data" / "decision.duckdb", path)
    return Store(str(path), read_only=True)


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_saved_database_gives_the_same_summary(saved, name, lang):
    d = recommend(saved, "customer-service", **OPTIONS[name])
    for fmt in ("json", "md"):
        got = report.render(d, fmt, lang, generated_at="T").decode("utf-8")
        path = GOLDEN / f"{name}-{lang}.{fmt}"
        if os.environ.get("MODELPICK_WRITE_GOLDEN") == "1":
            path.write_text(got, encoding="utf-8")
        assert got == path.read_text(encoding="utf-8"), f"{path.name} differs (see the module's docstring)"


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_page_one_of_the_memo_carries_no_software_instructions(name, lang):
    """Page one is for the board: no command-line flags, commands or file names before the evidence."""
    import re

    md = (GOLDEN / f"{name}-{lang}.md").read_text(encoding="utf-8")
    lead = md[:md.find("\n# ", 10)]
    assert "## " in lead and not re.findall(r"(?<![\w-])--[a-z][\w-]*|python -m|\.duckdb|\.yaml", lead)
