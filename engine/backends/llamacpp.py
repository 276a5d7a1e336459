"""llama.cpp in process through llama-cpp-python, with llama.cpp's own counters.

Specs: `llamacpp/<catalog id>` for a bundled model, `llamacpp/<path>.gguf` for any file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import psutil

from ..catalog import bundled_path, get_model, load_catalog
from . import ModelSpec, register_backend
from .base import Backend, BackendError, Chunk, EngineReport, GenParams


def supports_gpu_offload() -> bool:
    """Whether this llama-cpp-python build can put layers on a GPU (CUDA, Metal, ...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def gguf_path_for(model: str) -> Path:
    """The GGUF file a `llamacpp/<model>` spec names; BackendError naming the model if none."""
    if model.endswith(".gguf"):
        path = Path(model).expanduser()
        if not path.is_file():
            raise BackendError(f"GGUF file not found: {path} (model llamacpp/{model})")
        return path
    entry = get_model(model)
    if entry is None:
        bundled = [m.id for m in load_catalog().values() if m.bundled]
        raise BackendError(
            f"unknown model llamacpp/{model}: use a bundled model ({', '.join(bundled)}) "
            f"or a path ending in .gguf"
        )
    if entry.bundled is None:
        hints = "; ".join(f"{k}: {v}" for k, v in entry.serve.items())
        raise BackendError(
            f"llamacpp/{model} has no local GGUF file: download one and use "
            f"llamacpp/<path>.gguf, or serve it ({hints})"
        )
    return bundled_path(model)


def _default_threads() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


class LlamaCppBackend(Backend):
    def __init__(self, spec: ModelSpec, n_ctx: int = 4096, n_threads: int | None = None,
                 n_gpu_layers: int = 0, chat_format: str | None = None, **_ignored):
        self.path = gguf_path_for(spec.model)
        entry = get_model(spec.model)
        self.chat_format = chat_format or (entry.chat_format if entry else None)
        self.chat_template = entry.chat_template if entry and not chat_format else None
        self.stop = list(entry.stop) if entry else []
        self.n_ctx = n_ctx
        self.n_threads = n_threads or _default_threads()
        self.n_gpu_layers = n_gpu_layers
        self._llm = None
        self._rss_mb: float | None = None

    def load(self) -> None:
        import llama_cpp

        rss_before = psutil.Process().memory_info().rss
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                n_gpu_layers=self.n_gpu_layers, chat_format=self.chat_format, verbose=False,
            )
        except Exception as exc:  # llama.cpp raises ValueError on a bad file
            raise BackendError(f"llamacpp/{self.path.name}: could not load {self.path}: {exc}") from exc
        if self.chat_template:
            self._llm.chat_handler = self._template_handler(self._llm)
        self._rss_mb = (psutil.Process().memory_info().rss - rss_before) / 2**20

    def _template_handler(self, llm):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def text(token: int) -> str:
            return llm.detokenize([token], special=True).decode("utf-8", "replace")

        return Jinja2ChatFormatter(
            template=self.chat_template, eos_token=text(llm.token_eos()),
            bos_token=text(llm.token_bos()), stop_token_ids=[llm.token_eos()],
        ).to_chat_handler()

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def memory_mb(self) -> dict:
        out = {"rss_mb": self._rss_mb}
        from ..hostinfo import process_vram_mb

        out["vram_mb"] = process_vram_mb()
        return out

    def stream(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        import llama_cpp

        if self._llm is None:
            self.load()
        llm = self._llm
        # Forget the previous prompt so every generation evaluates its whole prompt:
        # timings stay comparable across cases and repeats.
        llm.reset()
        ctx = llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        finish = None
        for chunk in llm.create_chat_completion(
            messages=messages, max_tokens=params.max_tokens, temperature=params.temperature,
            seed=params.seed, stop=self.stop or None, stream=True,
        ):
            choice = chunk["choices"][0]
            text = choice.get("delta", {}).get("content")
            if text:
                yield text
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        perf = llama_cpp.llama_perf_context(ctx)
        # llama.cpp evaluates every sampled token but the last one; an end-of-generation
        # token is not output, a token cut by max_tokens is.
        output_tokens = perf.n_eval + (1 if finish == "length" else 0)
        yield EngineReport(
            prompt_tokens=perf.n_p_eval, output_tokens=output_tokens,
            engine_prompt_ms=perf.t_p_eval_ms, engine_decode_ms=perf.t_eval_ms,
            engine_decode_tokens=perf.n_eval, finish_reason=finish,
        )


register_backend("llamacpp", LlamaCppBackend)
