"""Loopback servers that speak Ollama's and the OpenAI-compatible streaming protocols
exactly as documented (NDJSON with nanosecond metrics; server-sent events with a usage
chunk), with faults chosen by model name. Used where the real server cannot run here,
and by bench/http_overhead.py as a server that answers instantly."""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = "Newton's first law is about inertia, the second about acceleration, the third about reaction."


class _Handler(BaseHTTPRequestHandler):
    MODELS: set[str] = set()  # the models a fake serves (each kind sets its own)
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        # Small streamed writes must not wait for delayed ACKs (a 40 ms stall per request).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # --- helpers ---------------------------------------------------------------------
    def _body(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"{}")

    def _json(self, status: int, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _words(self, max_tokens: int) -> list[str]:
        words = ANSWER.split(" ")
        burst = self.server.burst
        if burst:
            words = ["tok"] * burst
        return [w if i == 0 else " " + w for i, w in enumerate(words[:max_tokens])]

    def _stall(self) -> None:
        # Stop sending, keep the connection open; end when the client gives up.
        self.server.stop_stall.wait(30)


class OllamaHandler(_Handler):
    MODELS = {"llama3:8b-instruct", "caller", "gpt-oss:20b", "fault:500", "fault:error-mid", "fault:malformed",
              "fault:stall", "fault:no-final"}

    def do_GET(self):
        if self.path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == "/api/tags":
            self._json(200, {"models": [{"name": m, "model": m, "modified_at": _now(),
                                         "size": self.SIZE.get(m, 4_920_000_000),
                                         "digest": "sha256:" + "0" * 64, "details": _details()}
                                        for m in sorted(self.MODELS) if not m.startswith("fault")]})
        elif self.path == "/api/ps":
            self._json(200, {"models": [{"name": m, "model": m, "size": 6_000_000_000, "size_vram": 5_000_000_000,
                                         "digest": "sha256:" + "0" * 64, "expires_at": _now(),
                                         "details": _details(), "context_length": 8192}
                                        for m in sorted(self.server.loaded)]})
        else:
            self._json(404, {"error": "404 page not found"})

    CONTEXT = {"llama3:8b-instruct": 8192, "gpt-oss:20b": 131072, "yi:34b": 4096}
    # what /api/show says of a model's shape (as Ollama's model_info has it): parameters, layers, KV heads,
    # attention heads, width; and its size on disk as /api/tags lists it
    SHAPE = {"llama3:8b-instruct": (8_030_261_248, 32, 8, 32, 4096), "yi:34b": (34_388_917_248, 60, 8, 56, 7168)}
    SIZE = {"yi:34b": 19_466_000_000}

    def do_POST(self):
        body = self._body()
        self.server.requests.append((self.path, body))
        model = body.get("model", "")
        if self.path == "/api/show":
            if model not in self.MODELS:
                return self._json(404, {"error": f"model '{model}' not found"})
            arch = "gptoss" if model.startswith("gpt-oss") else "llama"
            info = {"general.architecture": arch, f"{arch}.context_length": self.CONTEXT.get(model, 4096)}
            if model in self.SHAPE:
                params, layers, kv, heads, width = self.SHAPE[model]
                info |= {"general.parameter_count": params, f"{arch}.block_count": layers,
                         f"{arch}.attention.head_count_kv": kv, f"{arch}.attention.head_count": heads,
                         f"{arch}.embedding_length": width}
            return self._json(200, {"modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
                                    "details": _details(), "modified_at": _now(), "model_info": info})
        if self.path not in ("/api/chat", "/api/generate"):
            return self._json(404, {"error": "404 page not found"})
        if model not in self.MODELS:
            return self._json(404, {"error": f"model '{model}' not found"})
        if model == "fault:500":
            return self._json(500, {"error": "llama runner process has terminated: signal: killed"})
        if self.path == "/api/generate" and not body.get("prompt"):
            if body.get("keep_alive") in (0, "0", "0s"):
                self.server.loaded.discard(model)
                return self._json(200, {"model": model, "created_at": _now(), "response": "", "done": True,
                                        "done_reason": "unload"})
            cold = model not in self.server.loaded
            self.server.loaded.add(model)
            if cold:
                time.sleep(self.server.load_s)
            return self._json(200, {"model": model, "created_at": _now(), "response": "", "done": True,
                                    "done_reason": "load",
                                    "load_duration": int(self.server.load_s * 1e9) if cold else 0})
        self._stream_answer(model, body)

    def _stream_answer(self, model: str, body: dict) -> None:
        cold = model not in self.server.loaded
        self.server.loaded.add(model)
        opts = body.get("options") or {}
        words = self._words(int(opts.get("num_predict") or 128))
        chat = self.path == "/api/chat"
        t0 = time.perf_counter_ns()
        self._start_stream("application/x-ndjson")

        def line(obj):
            self._chunk((json.dumps(obj) + "\n").encode())

        def piece(text="", thinking=None):
            obj = {"model": model, "created_at": _now(), "done": False}
            if chat:
                obj["message"] = {"role": "assistant", "content": text}
                if thinking:
                    obj["message"]["thinking"] = thinking
            else:
                obj["response"] = text
                if thinking:
                    obj["thinking"] = thinking
            line(obj)

        if model == "caller" and body.get("tools"):  # a tool call as Ollama sends it: whole, arguments an object
            step: dict = self.server.tool_script.pop(0) if self.server.tool_script else {"text": "All done."}
            message: dict = {"role": "assistant", "content": step.get("text", "")}
            if step.get("calls"):
                message["tool_calls"] = [{"function": {"name": c["name"], "arguments": c["arguments"]}}
                                         for c in step["calls"]]
            line({"model": model, "created_at": _now(), "message": message, "done": False})
            line({"model": model, "created_at": _now(), "message": {"role": "assistant", "content": ""},
                  "done": True, "done_reason": "stop", "total_duration": 1_000_000, "load_duration": 0,
                  "prompt_eval_count": 20, "prompt_eval_duration": 500_000, "eval_count": 12,
                  "eval_duration": 400_000})
            self._end_stream()
            return
        if model == "gpt-oss:20b":
            for w in ["The", " user", " asks", " about", " Newton."]:
                piece(thinking=w)
                time.sleep(self.server.delay_s)
        first_decode = time.perf_counter_ns()
        for i, w in enumerate(words):
            if model.startswith("fault:") and i == 2:
                if model == "fault:error-mid":
                    line({"error": "an error was encountered while running the model: out of memory"})
                elif model == "fault:malformed":
                    self._chunk(b"{this is not json\n")
                elif model == "fault:stall":
                    return self._stall()
                self._end_stream()
                return
            piece(w)
            time.sleep(self.server.delay_s)
        end = time.perf_counter_ns()
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) or \
            len(str(body.get("prompt", "")).split())
        line({"model": model, "created_at": _now(),
              **({"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}),
              "done": True, "done_reason": "length" if len(words) == int(opts.get("num_predict") or 128) else "stop",
              "total_duration": end - t0 + (int(self.server.load_s * 1e9) if cold else 0),
              "load_duration": int(self.server.load_s * 1e9) if cold else 0,
              "prompt_eval_count": prompt_tokens, "prompt_eval_duration": max(first_decode - t0, 1000),
              "eval_count": len(words) + (5 if model == "gpt-oss:20b" else 0),
              "eval_duration": max(end - first_decode, 1000)})
        self._end_stream()


# streams with the right fields and the wrong types, each a generation that must fail with the reason
MALFORMED = ("bad-content-number", "bad-reasoning-list", "bad-finish-list", "bad-usage-strings",
             "bad-usage-negative", "bad-usage-huge")


class OpenAIHandler(_Handler):
    MODELS = {"echo", "no-usage", "reasoner", "fault-500", "fault-error-mid", "fault-malformed",
              "fault-stall", "fault-no-final", "fault-drop", "fault-401-echo", "cacher", "parrot", "parrot-all-3",
              "fault-500-echo", "fault-sse-echo", "says-key", "redirect", "a40", "inflated",
              "caller", "no-tools", "limited-2nd", "limited-long", "limited-always", "busy-503", *MALFORMED}

    def do_GET(self):
        self.server.auth.append(self.headers.get("Authorization"))
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "test",
                                                         "max_model_len": 16384}  # as vLLM tells it
                                                        for m in sorted(self.MODELS)]})
        else:
            self._json(404, {"error": {"message": "not found", "type": "not_found_error"}})

    def do_POST(self):
        self.server.auth.append(self.headers.get("Authorization"))
        body = self._body()
        self.server.requests.append((self.path, body))
        model = body.get("model")
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            return self._json(404, {"error": {"message": "not found"}})
        if model not in self.MODELS:
            return self._json(404, {"error": {"message": f"The model `{model}` does not exist.",
                                              "type": "NotFoundError", "code": 404}})
        if model == "fault-500":
            return self._json(500, {"error": {"message": "CUDA out of memory", "type": "InternalServerError"}})
        if model in ("limited-2nd", "limited-long", "limited-always", "busy-503"):  # a rate limit as servers send it
            self.server.counts[model] = n = self.server.counts.get(model, 0) + 1
            limited = {"limited-2nd": n % 2 == 0, "limited-long": n <= self.server.limit_first,
                       "limited-always": True, "busy-503": n % 3 == 1}[model]
            if limited:
                after = {"limited-long": "120", "busy-503": "0.05"}.get(model, "0.2")
                return self._rate_limited(429 if model != "busy-503" else 503, after)
        if model == "fault-401-echo":  # a careless proxy that echoes the request's credentials
            return self._json(401, {"error": {"message": "invalid credentials: Authorization: "
                                              + str(self.headers.get("Authorization")), "type": "auth_error"}})
        key = str(self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if model == "fault-500-echo":  # the bare key, without "Bearer" before it
            return self._json(500, {"error": {"message": f"upstream rejected token {key}", "type": "server_error"}})
        if model == "redirect":  # a proxy that sends the request on to the cloud's metadata service
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/iam/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        chat = self.path == "/v1/chat/completions"
        if model == "no-tools" and body.get("tools"):  # a server started without tool support
            return self._json(400, {"error": {"message": "tools param requires --jinja flag", "type": "invalid_request_error"}})
        if model == "caller" and body.get("tools"):
            return self._openai_calls(body)
        words = self._words(int(body.get("max_tokens") or 128))
        if model in ("parrot", "parrot-all-3"):  # a "model" that only repeats its prompt, whatever max_tokens says
            msgs = body.get("messages") or [{"role": "user", "content": str(body.get("prompt", ""))}]
            users = [str(m.get("content", "")) for m in msgs if m.get("role") == "user"]
            said = users[-1] if users else ""
            if model == "parrot-all-3":
                system = "\n".join(str(m.get("content", "")) for m in msgs if m.get("role") == "system")
                said = "\n".join([system, said] * 3).strip()
            words = re.findall(r"\S+\s*|\s+", said)
        if model == "says-key":  # a model that repeats the key it was sent in its answer
            words = ["The", " key", " is", f" {key}", "."]
        if model == "a40":  # 40 a's and a bang: the answer a backtracking pattern chokes on
            words = ["a" * 40 + "!"]
        cached = 0
        if model == "cacher":  # a prefix cache as vLLM keeps one: a prompt's start seen before is not recomputed
            prompt = " ".join(str(m.get("content", "")) for m in body.get("messages", [])).split() or \
                str(body.get("prompt", "")).split()
            for seen in self.server.prompt_cache:
                same = next((i for i, (a, b) in enumerate(zip(prompt, seen)) if a != b), min(len(prompt), len(seen)))
                cached = max(cached, same)
            self.server.prompt_cache.append(prompt)
            time.sleep(0.001 * (len(prompt) - cached))  # prefill: 1 ms a word not in the cache
        self._start_stream("text/event-stream")

        def event(obj):
            self._chunk(f"data: {json.dumps(obj)}\n\n".encode())

        def choice(delta_or_text, finish=None):
            if chat:
                return {"index": 0, "delta": delta_or_text, "finish_reason": finish}
            return {"index": 0, "text": delta_or_text.get("content", ""), "finish_reason": finish}

        base = {"id": "cmpl-1", "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": model}
        if chat:
            event({**base, "choices": [choice({"role": "assistant", "content": ""})]})
        if model == "reasoner":
            for w in ["Thinking", " about", " laws."]:
                event({**base, "choices": [choice({"reasoning_content": w})]})
                time.sleep(self.server.delay_s)
        if model in MALFORMED:  # a server that sends the right fields with the wrong types
            return self._malformed(model, base, event, choice)
        for i, w in enumerate(words):
            if model == "fault-sse-echo" and i == 1:
                event({"error": {"message": f"token {key} expired", "type": "auth_error"}})
                self._end_stream()
                return
            if model.startswith("fault-") and i == 2:
                if model == "fault-error-mid":
                    event({"error": {"message": "the engine died", "type": "InternalServerError"}})
                elif model == "fault-malformed":
                    self._chunk(b"data: {not json\n\n")
                elif model == "fault-stall":
                    return self._stall()
                elif model == "fault-drop":
                    self.wfile.write(b"ff\r\ndata: {\"partial")  # cut inside a chunk
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self._end_stream()
                return
            event({**base, "choices": [choice({"content": w})]})
            if self.server.delay_s:
                time.sleep(self.server.delay_s)
        finish = "length" if len(words) == int(body.get("max_tokens") or 128) and not model.startswith("parrot") \
            else "stop"
        event({**base, "choices": [choice({}, finish)]})
        if model != "no-usage" and (body.get("stream_options") or {}).get("include_usage"):
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) or \
                len(str(body.get("prompt", "")).split())
            usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + len(words),
                     "completion_tokens": len(words) + (3 if model == "reasoner" else 0)}
            if model == "cacher":
                usage["prompt_tokens_details"] = {"cached_tokens": cached}
            if model == "inflated":  # a server whose word on tokens would buy the throughput score
                usage["completion_tokens"] = 2147483646
            event({**base, "choices": [], "usage": usage})
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()


    def _rate_limited(self, status: int, after: str) -> None:
        data = json.dumps({"error": {"message": "Rate limit reached for requests", "type": "requests",
                                     "code": "rate_limit_exceeded"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", after)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _openai_calls(self, body) -> None:
        """The next step of the server's tool script, streamed as vLLM and OpenAI stream calls: the first
        piece of each call with its id and name, its arguments in pieces of 3 characters, `tool_calls` as
        the finish reason, then the usage."""
        step = self.server.tool_script.pop(0) if self.server.tool_script else {"text": "All done."}
        self._start_stream("text/event-stream")

        def event(obj):
            self._chunk(f"data: {json.dumps(obj)}\n\n".encode())

        base = {"id": "chatcmpl-7", "object": "chat.completion.chunk", "created": int(time.time()), "model": "caller"}
        pieces = 0
        if step.get("text"):
            for w in re.findall(r"\S+\s*", step["text"]):
                event({**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
                pieces += 1
        for n, call in enumerate(step.get("calls", [])):
            self.server.call_count += 1
            first = {"index": n, "id": f"call_{self.server.call_count}", "type": "function",
                     "function": {"name": call["name"], "arguments": ""}}
            event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": None,
                                                                "tool_calls": [first]}, "finish_reason": None}]})
            args = call["arguments"] if isinstance(call["arguments"], str) else json.dumps(call["arguments"])
            for i in range(0, len(args), 3):
                event({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": n, "function": {"arguments": args[i:i + 3]}}]}, "finish_reason": None}]})
                pieces += 1
        finish = "tool_calls" if step.get("calls") else "stop"
        event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        event({**base, "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": pieces,
                                                 "total_tokens": 20 + pieces}})
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()

    def _malformed(self, model, base, event, choice):
        usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        if model == "bad-content-number":
            event({**base, "choices": [choice({"content": 5})]})
        elif model == "bad-reasoning-list":
            event({**base, "choices": [choice({"reasoning_content": ["a", "b"]})]})
        else:
            event({**base, "choices": [choice({"content": "Fine."})]})
        finish = ["stop"] if model == "bad-finish-list" else "stop"
        event({**base, "choices": [choice({}, finish)]})
        if model == "bad-usage-strings":
            usage = {"prompt_tokens": "five", "completion_tokens": "two"}
        elif model == "bad-usage-negative":
            usage = {"prompt_tokens": -5, "completion_tokens": -2}
        elif model == "bad-usage-huge":
            usage = {"prompt_tokens": 2**40, "completion_tokens": 2**40}
        event({**base, "choices": [], "usage": usage})
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    # what the handlers read and record (set by FakeServer)
    delay_s: float
    load_s: float
    burst: int
    loaded: set
    requests: list
    tool_script: list
    call_count: int
    counts: dict
    limit_first: int
    auth: list
    prompt_cache: list
    stop_stall: threading.Event


class FakeServer:
    """Start on a free loopback port; `url` is the base, e.g. http://127.0.0.1:PORT."""

    def __init__(self, handler, delay_s: float = 0.002, load_s: float = 0.05, burst: int = 0, port: int = 0):
        self.httpd = _Server(("127.0.0.1", port), handler)
        self.httpd.delay_s, self.httpd.load_s, self.httpd.burst = delay_s, load_s, burst
        self.httpd.loaded, self.httpd.requests, self.httpd.auth = set(), [], []
        self.httpd.prompt_cache = []
        self.httpd.tool_script, self.httpd.call_count = [], 0  # the steps a "caller" model takes, in order
        self.httpd.counts, self.httpd.limit_first = {}, 10**9  # requests per limited model; limited-long's first N
        self.httpd.stop_stall = threading.Event()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}"

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.stop_stall.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _details() -> dict:
    return {"format": "gguf", "family": "llama", "parameter_size": "8.0B", "quantization_level": "Q4_K_M"}


class SilentServer:
    """Accepts connections and never answers: a hung server or a black-holing proxy."""

    def __init__(self):
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.conns = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)  # held open, never read from or written to
            except OSError:
                continue

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for c in self.conns:
            c.close()
        self.sock.close()


if __name__ == "__main__":
    # A stand-in server as a process, e.g. for a cloud session run on loopback; further
    # arguments are model names it serves besides its own:
    #   python -m tests.fakeservers openai 8123 openai/gpt-oss-20b
    import sys

    kind, port, extra = sys.argv[1], int(sys.argv[2]), set(sys.argv[3:])
    handler = {"openai": OpenAIHandler, "ollama": OllamaHandler}[kind]
    handler.MODELS = handler.MODELS | extra
    with FakeServer(handler, port=port) as srv:
        srv.thread.join()


def one_at_a_time(handler):
    """The handler as a server with one slot: requests wait their turn, so past its capacity a queue
    builds and TTFT climbs."""
    lock = threading.Lock()

    class Serial(handler):
        def do_POST(self):
            with lock:
                super().do_POST()

    Serial.__name__ = f"Serial{handler.__name__}"
    return Serial
