"""llama.cpp in process through llama-cpp-python, with llama.cpp's own counters.

Specs: `llamacpp/<catalog id>` for a bundled model, `llamacpp/<path>.gguf` for any file.
"""
from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import psutil

if TYPE_CHECKING:
    import llama_cpp

from ..catalog import bundled_path, get_model, load_catalog
from . import ModelSpec, register_backend
from .base import (
    DEFAULT_MAX_CONTEXT,
    FALLBACK_CONTEXT,
    Backend,
    BackendError,
    Chunk,
    ContextOverflow,
    EngineReport,
    GenParams,
)


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
    def __init__(self, spec: ModelSpec, n_ctx: int | None = None, n_threads: int | None = None,
                 n_gpu_layers: int = 0, chat_format: str | None = None, max_context: int | None = None,
                 **_ignored):
        self.path = gguf_path_for(spec.model)
        entry = get_model(spec.model)
        self.chat_format = chat_format or (entry.chat_format if entry else None)
        self.chat_template = entry.chat_template if entry and not chat_format else None
        self.stop = list(entry.stop) if entry else []
        # n_ctx given: that context. Otherwise the model's own (its GGUF's context_length),
        # capped by max_context; known for sure once the file is read at load().
        self.n_ctx = n_ctx
        self.max_context = max_context or DEFAULT_MAX_CONTEXT
        self.context_tokens = n_ctx
        self.n_threads = n_threads or _default_threads()
        self.n_gpu_layers = n_gpu_layers
        self._llm: llama_cpp.Llama | None = None
        self._formatter = None
        self._rss_mb: float | None = None

    def load(self) -> None:
        import llama_cpp

        if self.n_ctx is None:
            self.n_ctx = min(self.trained_context() or FALLBACK_CONTEXT, self.max_context)
            self.context_tokens = self.n_ctx
        rss_before = psutil.Process().memory_info().rss
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                n_gpu_layers=self.n_gpu_layers, chat_format=self.chat_format, verbose=False,
            )
        except Exception as exc:  # llama.cpp raises ValueError on a bad file
            raise BackendError(f"llamacpp/{self.path.name}: could not load {self.path}: {exc}") from exc
        self._formatter = self._make_formatter(self._llm)
        self._rss_mb = (psutil.Process().memory_info().rss - rss_before) / 2**20

    def host_facts(self) -> dict:
        """Whether this llama.cpp build offloads to a GPU, and its versions."""
        import importlib.metadata

        import llama_cpp

        return {"llama_gpu_offload": supports_gpu_offload(), "llama_cpp_python": importlib.metadata.version(
            "llama-cpp-python"), "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode(
                "utf-8", "replace").strip()[:500]}

    def trained_context(self) -> int | None:
        """The context length the GGUF file declares (`<arch>.context_length`), read from its
        header without loading the weights."""
        from .gguf_meta import GGUFError, trained_context

        try:
            return trained_context(self.path)
        except (OSError, GGUFError) as exc:
            raise BackendError(f"llamacpp/{self.path.name}: could not read {self.path}: {exc}") from exc

    def _make_formatter(self, llm):
        """A Jinja formatter from the catalog's template or the GGUF's own; None to let
        llama-cpp-python apply a named chat_format."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.chat_template
        if template is None and not self.chat_format:
            template = llm.metadata.get("tokenizer.chat_template")
        if template is None:
            return None

        def text(token: int) -> str:
            return llm.detokenize([token], special=True).decode("utf-8", "replace")

        return Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()),
                                   bos_token=text(llm.token_bos()))

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def footprint_mb(self) -> float | None:
        # the weights file plus a fifth for the KV cache and buffers
        return self.path.stat().st_size / 2**20 * 1.2

    def memory_mb(self) -> dict:
        out = {"rss_mb": self._rss_mb}
        from ..hostinfo import process_vram_mb

        out["vram_mb"] = process_vram_mb()
        return out

    def _loaded(self) -> llama_cpp.Llama:
        if self._llm is None:
            self.load()
        if self._llm is None:
            raise BackendError(f"llamacpp/{self.path.name}: the model did not load")
        return self._llm

    def stream(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        import llama_cpp

        llm = self._loaded()
        n_ctx = self.n_ctx or llm.n_ctx()  # as asked (the buffers are sized by it), set by load()
        if params.mode == "completion":
            prompt = llm.tokenize(messages[-1]["content"].encode("utf-8"), add_bos=True, special=False)
            template_stops: list[str] = []
        elif self._formatter is None:
            yield from self._stream_library_chat(messages, params)
            return
        else:
            formatted = self._formatter(messages=messages)
            prompt = llm.tokenize(formatted.prompt.encode("utf-8"),
                                  add_bos=not formatted.added_special, special=True)
            template_stops = _as_list(formatted.stop)
        if len(prompt) >= n_ctx:
            raise ContextOverflow(f"llamacpp/{self.path.name}: prompt of {len(prompt)} tokens "
                                  f"exceeds the context of {n_ctx} tokens")
        stops = self.stop + template_stops
        # Forget the previous prompt so every generation evaluates its whole prompt:
        # timings stay comparable across cases and repeats.
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        if params.seed is not None:
            llm.set_seed(params.seed)
        budget = min(params.max_tokens, n_ctx - len(prompt))
        vocab = llm._model.vocab
        # Invalid UTF-8 from the model (it happens with byte tokens) is dropped, as
        # llama-cpp-python does; a character split across tokens waits for its last byte.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        text, emitted, n_out, finish, cut = "", 0, 0, "length", None
        # Our own token loop rather than create_chat_completion: the library's stream
        # re-detokenizes the whole answer at every token, which shows up in the timings.
        for token in llm.generate(prompt, temp=params.temperature, top_k=40, top_p=0.95,
                                  min_p=0.05, repeat_penalty=1.0):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            n_out += 1
            text += decoder.decode(llm.detokenize([token]))
            cut, safe = _stop_scan(text, emitted, stops)
            if cut is not None:
                text, safe, finish = text[:cut], cut, "stop"
            if safe > emitted:
                yield text[emitted:safe]
                emitted = safe
            if finish == "stop" or n_out >= budget:
                break
        if cut is None:
            text += decoder.decode(b"", final=True)
            if len(text) > emitted:
                yield text[emitted:]
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        yield EngineReport(
            prompt_tokens=len(prompt), output_tokens=n_out,
            engine_prompt_ms=perf.t_p_eval_ms, engine_decode_ms=perf.t_eval_ms,
            engine_decode_tokens=perf.n_eval, finish_reason=finish,
        )

    def _stream_library_chat(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        """A named chat_format without a template: llama-cpp-python formats the chat."""
        import llama_cpp

        llm = self._loaded()
        llm.reset()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        finish = None
        stream = cast(Iterator[Any], llm.create_chat_completion(  # stream=True: an iterator of chunks
            messages=cast(Any, messages), max_tokens=params.max_tokens, temperature=params.temperature,
            seed=params.seed, stop=self.stop or None, stream=True,
        ))
        for chunk in stream:
            choice = chunk["choices"][0]
            text = choice.get("delta", {}).get("content")
            if text:
                yield text
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        # llama.cpp evaluates every sampled token but the last one; an end-of-generation
        # token is not output, a token cut by max_tokens is.
        yield EngineReport(
            prompt_tokens=perf.n_p_eval, output_tokens=perf.n_eval + (finish == "length"),
            engine_prompt_ms=perf.t_p_eval_ms, engine_decode_ms=perf.t_eval_ms,
            engine_decode_tokens=perf.n_eval, finish_reason=finish,
        )


def _as_list(stop) -> list[str]:
    if not stop:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


def _stop_scan(text: str, start: int, stops: list[str]) -> tuple[int | None, int]:
    """(where a stop string begins, or None; how far text is safe to emit).

    Text that could be the start of a stop string is held back until it is not.
    """
    if not stops:
        return None, len(text)
    hits = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    if hits:
        return min(hits), min(hits)
    safe = len(text)
    for s in stops:
        for k in range(min(len(s) - 1, len(text) - start), 0, -1):
            if text.endswith(s[:k]):
                safe = min(safe, len(text) - k)
                break
    return None, safe


register_backend("llamacpp", LlamaCppBackend)
