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
      with params["tools"], pieces of calls come as ("call", index, name or None, arguments piece)
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
        self.template_takes_tools = False

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
        return {"rss_mb": (_rss_bytes() - rss_before) / 2**20, "n_ctx": self.llm.n_ctx(),
                "tools_route": "template" if self.template_takes_tools else "grammar"}

    def _make_formatter(self, template, chat_format):
        """A Jinja formatter from the catalog's template or the GGUF's own; None to let
        llama-cpp-python apply a named chat_format."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        if template is None and not chat_format:
            template = llm.metadata.get("tokenizer.chat_template")
        if template is None:
            return None
        self.template_takes_tools = "tools" in template  # the model's own template renders the tools

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
        if p.get("tools") and p["mode"] == "chat" and p.get("tool_choice") != "none":
            if self.formatter is None:
                raise RuntimeError("tools need a chat template (this model runs a named chat_format)")
            if self.template_takes_tools:
                self._template_tools(messages, p)
            else:
                self._grammar_tools(messages, p)
            return
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

    # -- tools ------------------------------------------------------------------------
    def _prompt(self, messages: list[dict], **extra) -> tuple[list[int], list[str]]:
        formatted = self.formatter(messages=messages, **extra)
        prompt = self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)
        if len(prompt) >= self.n_ctx:
            raise _Overflow(f"llamacpp/{self.name}: prompt of {len(prompt)} tokens exceeds the context of "
                            f"{self.n_ctx} tokens")
        return prompt, _as_list(formatted.stop)

    def _begin(self, p: dict) -> None:
        import llama_cpp

        llm = self.llm
        llm.reset()
        llm._ctx.kv_cache_clear()
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        if p["seed"] is not None:
            llm.set_seed(p["seed"])

    def _run(self, tokens: list[int], p: dict, budget: int, grammar=None, stops=(), emit=None, done=None):
        """Generate after `tokens` (the prompt and what was generated so far) until an end-of-generation
        token, a stop string, `done(text)` or the budget; each safe piece of text goes to `emit`.
        (new tokens, their text, why it ended)."""
        import llama_cpp

        llm = self.llm
        vocab = llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        new: list[int] = []
        text, emitted, finish = "", 0, "length"
        stops = list(stops)
        if budget <= 0:
            return new, text, finish
        temp = 0.0 if grammar is not None and p["temperature"] == 0 else p["temperature"]
        for token in llm.generate(tokens, temp=temp, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.0,
                                  grammar=grammar):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            new.append(token)
            text += decoder.decode(llm.detokenize([token]))
            cut, safe = stop_scan(text, emitted, stops)
            if cut is not None:
                text, safe, finish = text[:cut], cut, "stop"
            if emit and safe > emitted:
                emit(text[emitted:safe])
                emitted = safe
            if finish == "stop":
                break
            if done is not None and done(text):
                finish = "done"
                break
            if len(new) >= budget:
                break
            if self._cancelled():
                finish = "cancelled"
                break
        text += decoder.decode(b"", final=True)
        if emit and len(text) > emitted and finish != "stop":
            emit(text[emitted:])
        return new, text, finish

    def _grammar_tools(self, messages: list[dict], p: dict) -> None:
        """Tools for a model whose template carries none: the tools described in the system message, and
        every answer constrained by a grammar to begin `message:` (then free text) or `functions.<name>:`
        (then arguments that match the tool's JSON Schema), as llama-cpp-python's chatml-function-calling
        handler does, in this process's own token loop so the pieces stream and are timed."""
        import json
        import re

        from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

        tools = [t["function"] for t in p["tools"]]
        names = [t["name"] for t in tools]
        prompt, stops = self._prompt(_described(messages, tools))
        self._begin(p)
        send = self.conn.send
        choice = " | ".join(json.dumps(f"functions.{n}:") for n in names)
        required = p.get("tool_choice") == "required"
        first = LlamaGrammar.from_string(f"root ::= {choice}" if required else f'root ::= "message:" | {choice}',
                                         verbose=False)
        after = LlamaGrammar.from_string(f'root ::= "\n" ({choice} | "done.")', verbose=False)
        budget = min(p["max_tokens"], self.n_ctx - len(prompt))
        tokens, out, finish = list(prompt), 0, "length"
        head = re.compile(r"^\s*(message:|functions\.(.+):)$")
        grammar, calls = first, 0
        while True:
            new, text, why = self._run(tokens, p, budget - out, grammar=grammar,
                                       done=lambda t: head.match(t.strip()) is not None or t.strip() == "done.")
            tokens += new
            out += len(new)
            said = text.strip()
            if why in ("length", "cancelled") or out >= budget:
                finish = why if why != "done" else "length"
                break
            if said.startswith("message:"):
                started: list[bool] = []

                def answer(piece: str, started=started) -> None:  # the text, without the blank after "message:"
                    if not started:
                        piece = piece.lstrip()
                        if not piece:
                            return
                        started.append(True)
                    send(("chunk", piece))
                new, _, why = self._run(tokens, p, budget - out, stops=self.stops + stops + ["functions."],
                                        emit=answer)
                out += len(new)
                finish = why if why in ("length", "cancelled") else "stop"
                break
            m = re.match(r"^functions\.(.+):$", said)
            if not m or m.group(1) not in names or calls >= 8:
                finish = "tool_calls" if calls else "stop"
                break
            name = m.group(1)
            tool = tools[names.index(name)]
            send(("call", calls, name, ""))
            try:
                schema = LlamaGrammar.from_json_schema(json.dumps(tool.get("parameters") or {"type": "object"}),
                                                       verbose=False)
            except Exception:  # a schema the converter cannot take: any JSON object
                schema = LlamaGrammar.from_string(JSON_GBNF, verbose=False)
            index = calls
            new, _, why = self._run(tokens, p, budget - out, grammar=schema,
                                    emit=lambda s, i=index: send(("call", i, None, s)), done=_whole_json)
            tokens += new
            out += len(new)
            calls += 1
            finish = "tool_calls"
            if why in ("length", "cancelled"):
                finish = why
                break
            grammar = after
        self._report(prompt, out, finish)

    def _template_tools(self, messages: list[dict], p: dict) -> None:
        """Tools through the model's own chat template (it renders `tools`), and calls read from what it
        writes in the Hermes form, <tool_call>{"name": ..., "arguments": {...}}</tool_call>: a call's name
        is sent as soon as it is written, its arguments when the call is closed."""
        prompt, stops = self._prompt(messages, tools=p["tools"], tool_choice=p.get("tool_choice") or "auto")
        self._begin(p)
        reader = _HermesCalls(self.conn.send)
        budget = min(p["max_tokens"], self.n_ctx - len(prompt))
        new, _, why = self._run(list(prompt), p, budget, stops=self.stops + stops, emit=reader.feed)
        reader.end()
        self._report(prompt, len(new), "tool_calls" if reader.calls and why == "stop" else why)

    def _report(self, prompt: list[int], n_out: int, finish: str) -> None:
        import llama_cpp

        perf = llama_cpp.llama_perf_context(self.llm._ctx.ctx)
        self.conn.send(("report", {"prompt_tokens": len(prompt), "output_tokens": n_out,
                                   "engine_prompt_ms": perf.t_p_eval_ms, "engine_decode_ms": perf.t_eval_ms,
                                   "engine_decode_tokens": perf.n_eval, "finish_reason": finish}))

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


class _HermesCalls:
    """Text as a model writes it through its own template: plain text sent on as chunks, <tool_call> blocks
    read as calls (the name sent once written, the arguments once the block is closed)."""

    OPEN, CLOSE = "<tool_call>", "</tool_call>"

    def __init__(self, send):
        self.send = send
        self.buffer = ""
        self.calls = 0
        self.named = False  # the open block's name was sent
        self.inside = False

    def feed(self, piece: str) -> None:
        import json
        import re

        self.buffer += piece
        while self.buffer:
            if not self.inside:
                i = self.buffer.find(self.OPEN)
                if i < 0:  # hold back what could be the start of a block
                    keep = next((k for k in range(len(self.OPEN) - 1, 0, -1) if self.buffer.endswith(self.OPEN[:k])), 0)
                    if len(self.buffer) > keep:
                        self.send(("chunk", self.buffer[:len(self.buffer) - keep]))
                    self.buffer = self.buffer[len(self.buffer) - keep:]
                    return
                if i:
                    self.send(("chunk", self.buffer[:i]))
                self.buffer, self.inside, self.named = self.buffer[i + len(self.OPEN):], True, False
            name = re.search(r'"name"\s*:\s*"([^"]+)"', self.buffer)
            if name and not self.named:
                self.send(("call", self.calls, name.group(1), ""))
                self.named = True
            j = self.buffer.find(self.CLOSE)
            if j < 0:
                return
            body_text, self.buffer = self.buffer[:j], self.buffer[j + len(self.CLOSE):]
            try:
                body = json.loads(body_text)
            except ValueError:
                body = {"arguments": body_text.strip()}
            args = body.get("arguments", body.get("parameters", {})) if isinstance(body, dict) else body
            if not self.named:
                self.send(("call", self.calls, None, ""))
            text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
            self.send(("call", self.calls, None, text))
            self.calls += 1
            self.inside = False

    def end(self) -> None:
        if self.buffer and not self.inside:
            self.send(("chunk", self.buffer))
        elif self.inside:  # a block the model never closed: what it wrote is the call's arguments
            if not self.named:
                self.send(("call", self.calls, None, ""))
            self.send(("call", self.calls, None, self.buffer))
            self.calls += 1
        self.buffer = ""


def _whole_json(text: str) -> bool:
    """Whether text is one complete JSON value (a call's arguments have ended)."""
    import json

    t = text.strip()
    if not t.endswith(("}", "]")):
        return False
    try:
        json.loads(t)
    except ValueError:
        return False
    return True


def _described(messages: list[dict], tools: list[dict]) -> list[dict]:
    """The conversation for a template without tools: the functions described in the system message, the
    model's earlier calls written as it wrote them, and each tool's answer as a user message."""
    import json

    lines = ["You can call these functions:"]
    for t in tools:
        lines.append(f"functions.{t['name']}: {t.get('description') or ''}\n"
                     f"arguments (JSON Schema): {json.dumps(t.get('parameters') or {}, ensure_ascii=False)}")
    lines.append("To call a function, answer `functions.<name>:` followed by its arguments as a JSON object "
                 "(several calls one per line). To answer the user, begin with `message:`.")
    guide = "\n".join(lines)
    out: list[dict] = []
    for m in messages:
        if m.get("role") == "assistant" and m.get("tool_calls"):
            calls = "\n".join(f"functions.{c['function']['name']}:{c['function']['arguments']}"
                              for c in m["tool_calls"])
            out.append({"role": "assistant", "content": calls})
        elif m.get("role") == "tool":
            out.append({"role": "user", "content": f"Result of functions.{m.get('name')}: {m.get('content')}"})
        elif m.get("role") == "assistant":
            out.append({"role": "assistant", "content": f"message: {m.get('content') or ''}"})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    if out and out[0]["role"] == "system":
        out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + guide}
    else:
        out.insert(0, {"role": "system", "content": guide})
    # templates that want user and assistant to alternate: consecutive user messages joined
    merged: list[dict] = []
    for m in out:
        if merged and m["role"] == "user" and merged[-1]["role"] == "user":
            merged[-1] = {"role": "user", "content": merged[-1]["content"] + "\n\n" + m["content"]}
        else:
            merged.append(m)
    return merged


def main() -> None:
    from multiprocessing.connection import Connection

    conn = Connection(int(sys.argv[1]))
    import llama_cpp  # noqa: F401 (the slow import, done before the harness times a load)

    conn.send(("ready",))
    Engine(conn).serve()


if __name__ == "__main__":
    main()
