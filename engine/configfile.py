"""A run's and a load sweep's configuration as a JSON file: what `engine run --print-config` writes and
`engine run --config FILE` reads (the dashboard's worker passes its runs this way).

Every field is checked as the command line checks its options; an error names the file and the field.
The scenario is named by `scenario_id` (an id from scenarios/ or a path) or, as a run records it, by
`scenario_source` where that file still is.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .backends.base import DEFAULT_MAX_CONTEXT
from .scenarios import MAX_TEMPERATURE, MAX_TOKENS_LIMIT

MAX_CONFIG_BYTES = 1 << 20
Seconds = Annotated[float, Field(gt=0, le=7 * 86400)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class BackendOptionsFile(_Strict):
    n_gpu_layers: int = Field(0, ge=-1, le=100_000)
    n_ctx: int | None = Field(None, ge=1, le=1 << 24)
    max_context: int = Field(DEFAULT_MAX_CONTEXT, ge=256, le=1 << 24)
    timeout_s: Seconds | None = 120.0
    connect_timeout_s: Seconds = 10.0
    n_threads: int | None = Field(None, ge=1, le=1024)


class RunConfigFile(_Strict):
    scenario_id: str = Field(min_length=1)
    scenario_source: str | None = None
    models: list[str] = Field(min_length=1, max_length=64)
    repeats: int = Field(1, ge=1, le=1000)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    temperature: float | None = Field(None, ge=0, le=MAX_TEMPERATURE)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    case_ids: list[str] | None = None
    backend_options: BackendOptionsFile = Field(default_factory=BackendOptionsFile)
    warmup: bool = True
    judge: str | None = None
    first_token_timeout_s: Seconds | None = 120.0
    request_timeout_s: Seconds | None = 600.0
    cache_mode: Literal["cold", "warm"] = "cold"


class SweepConfigFile(_Strict):
    scenario_id: str = Field(min_length=1)
    scenario_source: str | None = None
    model: str = Field(min_length=1)
    concurrency: list[int] = Field(default_factory=list, max_length=64)  # or rates, or both
    requests: int | None = Field(None, ge=1, le=1_000_000)
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_LIMIT)
    slo: dict[Literal["ttft_ms", "e2e_ms", "itl_ms"], float] = Field(default_factory=dict)
    level_timeout_s: Seconds = 120.0
    request_timeout_s: Seconds = 60.0
    cache_mode: Literal["cold", "warm"] = "cold"
    rates: list[Annotated[float, Field(gt=0, le=10_000)]] = Field(default_factory=list, max_length=64)
    warmup: int = Field(0, ge=0, le=1000)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    find_max: bool = False
    slo_share: float = Field(0.95, ge=0.5, le=1.0, allow_inf_nan=False)
    max_levels: int = Field(10, ge=2, le=30)
    clients: int | None = Field(None, ge=1, le=64)


def _field(loc: tuple) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")


def read(path: str | Path, schema: type[_Strict]) -> dict:
    """The file's fields, checked against `schema`: only the fields the file sets (the others keep
    their defaults where the configuration is built). ValueError naming the file and the field."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"{path}: a configuration file over {MAX_CONFIG_BYTES >> 10} KiB is refused")
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the configuration file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON configuration file ({exc})") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object with scenario_id, models, ...")
    try:
        checked = schema.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            msg = {"missing": "missing required field", "extra_forbidden": "unknown field"}.get(e["type"], e["msg"])
            problems.append(f"field {_field(e['loc']) or '(top level)'}: {msg}")
        raise ValueError(f"{path}: " + "; ".join(problems)) from None
    return checked.model_dump(exclude_unset=True)


def write(path: str | Path, config: dict) -> Path:
    """Write a configuration (a config's `as_dict()`) as the file `--config` reads."""
    path = Path(path)
    path.write_text(dumps(config), encoding="utf-8")
    return path


def dumps(config: dict) -> str:
    return json.dumps(config, ensure_ascii=False, indent=2) + "\n"
