"""The llama.cpp engine process: one model, loaded and run by llama-cpp-python, answering the
requests of engine/backends/llamacpp.py over a socket.

Native code runs here, not in the harness: an instruction the CPU cannot run (SIGILL), a malformed
GGUF (SIGSEGV, SIGBUS) or an abort ends this process alone, and the harness records the model's
cells as failed with the signal named while the other models go on. The file is started by path
(`python llamacpp_engine.py FD`) so that it imports llama-cpp-python and the standard library
only, not the engine package; the harness imports `stop_scan` from it as a module.

Requests (tuples, pickled by multiprocessing's Connection), after the process has sent ("ready",):
  ("load", options) -> ("ok", {"rss_mb", "n_ctx"})
  ("stream", messages, params) -> ("chunk", text)..., ("report", counters), ("end",)
      a ("cancel",) sent meanwhile ends the generation early (the report and "end" still come)
  ("close",) -> ("ok", None), then the process exits
Any request can instead get ("error", kind, message), kind "overflow" or "error".
"""
from __future__ import annotations

import codecs
import os
import sys


def stop_scan(text: str, start: int, stops: list[str]) -> tuple[int | None, int]:
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


def _as_list(stop) -> list[str]:
    if not stop:
        return []
    return [stop] if isinstance(stop, str) else list(stop)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Overflow(Exception):
    pass


class Engine:
    """One llama.cpp model in this process."""

    def __init__(self, conn):
        self.conn = conn
        self.llm = None
        self.formatter = None
        self.stops: list[str] = []
        self.name = ""
        self.n_ctx = 0

    def load(self, o: dict) -> dict:
        import llama_cpp

        self.name = os.path.basename(o["path"])
        self.stops = list(o.get("stop") or [])
        rss_before = _rss_bytes()
        try:
            self.llm = llama_cpp.Llama(model_path=o["path"], n_ctx=o["n_ctx"], n_threads=o["n_threads"],
                                       n_gpu_layers=o["n_gpu_layers"], chat_format=o.get("chat_format"),
                                       verbose=False)
        except Exception as exc:  # llama.cpp raises ValueError on a bad file
            raise RuntimeError(f"could not load {o['path']}: {exc}") from exc
        self.formatter = self._make_formatter(o.get("chat_template"), o.get("chat_format"))
        self.n_ctx = o["n_ctx"]
        return {"rss_mb": (_rss_bytes() - rss_before) / 2**20, "n_ctx": self.llm.n_ctx()}

    def _make_formatter(self, template, chat_format):
        """A Jinja formatter from the catalog's template or the GGUF's own; None to let
        llama-cpp-python apply a named chat_format."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        if template is None and not chat_format:
            template = llm.metadata.get("tokenizer.chat_template")
        if template is None:
            return None

        def text(token: int) -> str:
            return llm.detokenize([token], special=True).decode("utf-8", "replace")

        return Jinja2ChatFormatter(template=template, eos_token=text(llm.token_eos()),
                                   bos_token=text(llm.token_bos()))

    def _cancelled(self) -> bool:
        """A cancel waiting on the socket (a poll: a system call, no wait)."""
        if self.conn.poll():
            msg = self.conn.recv()
            return msg[0] == "cancel"
        return False

    def stream(self, messages: list[dict], p: dict) -> None:
        import llama_cpp

        llm = self.llm
        if llm is None:
            raise RuntimeError("the model is not loaded")
        if p["mode"] == "completion":
            prompt = llm.tokenize(messages[-1]["content"].encode("utf-8"), add_bos=True, special=False)
            template_stops: list[str] = []
        elif self.formatter is None:
            self._library_chat(messages, p)
            return
        else:
            formatted = self.formatter(messages=messages)
            prompt = llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special,
                                  special=True)
            template_stops = _as_list(formatted.stop)
        if len(prompt) >= self.n_ctx:
            raise _Overflow(f"llamacpp/{self.name}: prompt of {len(prompt)} tokens exceeds the context of "
                            f"{self.n_ctx} tokens")
        stops = self.stops + template_stops
        # Forget the previous prompt and its cache so every generation evaluates its whole prompt:
        # timings stay comparable across cases and repeats (a cold prompt without changing the text).
        llm.reset()
        llm._ctx.kv_cache_clear()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        if p["seed"] is not None:
            llm.set_seed(p["seed"])
        budget = min(p["max_tokens"], self.n_ctx - len(prompt))
        vocab = llm._model.vocab
        send = self.conn.send
        # Invalid UTF-8 from the model (it happens with byte tokens) is dropped, as
        # llama-cpp-python does; a character split across tokens waits for its last byte.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        text, emitted, n_out, finish, cut = "", 0, 0, "length", None
        # Our own token loop rather than create_chat_completion: the library's stream
        # re-detokenizes the whole answer at every token, which shows up in the timings.
        for token in llm.generate(prompt, temp=p["temperature"], top_k=40, top_p=0.95, min_p=0.05,
                                  repeat_penalty=1.0):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            n_out += 1
            text += decoder.decode(llm.detokenize([token]))
            cut, safe = stop_scan(text, emitted, stops)
            if cut is not None:
                text, safe, finish = text[:cut], cut, "stop"
            if safe > emitted:
                send(("chunk", text[emitted:safe]))
                emitted = safe
            if finish == "stop" or n_out >= budget:
                break
            if self._cancelled():
                finish = "cancelled"
                break
        if cut is None:
            text += decoder.decode(b"", final=True)
            if len(text) > emitted:
                send(("chunk", text[emitted:]))
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        send(("report", {"prompt_tokens": len(prompt), "output_tokens": n_out, "engine_prompt_ms": perf.t_p_eval_ms,
                         "engine_decode_ms": perf.t_eval_ms, "engine_decode_tokens": perf.n_eval,
                         "finish_reason": finish}))

    def _library_chat(self, messages: list[dict], p: dict) -> None:
        """A named chat_format without a template: llama-cpp-python formats the chat."""
        import llama_cpp

        llm = self.llm
        llm.reset()
        llm._ctx.kv_cache_clear()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        finish = None
        for chunk in llm.create_chat_completion(messages=messages, max_tokens=p["max_tokens"],
                                                temperature=p["temperature"], seed=p["seed"],
                                                stop=self.stops or None, stream=True):
            choice = chunk["choices"][0]
            piece = choice.get("delta", {}).get("content")
            if piece:
                self.conn.send(("chunk", piece))
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            if self._cancelled():
                finish = "cancelled"
                break
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        # llama.cpp evaluates every sampled token but the last one; an end-of-generation
        # token is not output, a token cut by max_tokens is.
        self.conn.send(("report", {
            "prompt_tokens": perf.n_p_eval, "output_tokens": perf.n_eval + (finish == "length"),
            "engine_prompt_ms": perf.t_p_eval_ms, "engine_decode_ms": perf.t_eval_ms,
            "engine_decode_tokens": perf.n_eval, "finish_reason": finish}))

    def serve(self) -> None:
        conn = self.conn
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the harness has gone: so does its engine
                return
            kind = msg[0]
            try:
                if kind == "load":
                    conn.send(("ok", self.load(msg[1])))
                elif kind == "stream":
                    self.stream(msg[1], msg[2])
                    conn.send(("end",))
                elif kind == "close":
                    if self.llm is not None:
                        self.llm.close()
                    conn.send(("ok", None))
                    return
                elif kind == "cancel":
                    continue  # arrived after its generation ended
                else:
                    conn.send(("error", "error", f"unknown request {kind!r}"))
            except _Overflow as exc:
                conn.send(("error", "overflow", str(exc)))
            except Exception as exc:
                conn.send(("error", "error", f"{type(exc).__name__}: {exc}"))


def main() -> None:
    from multiprocessing.connection import Connection

    conn = Connection(int(sys.argv[1]))
    import llama_cpp  # noqa: F401 (the slow import, done before the harness times a load)

    conn.send(("ready",))
    Engine(conn).serve()


if __name__ == "__main__":
    main()
