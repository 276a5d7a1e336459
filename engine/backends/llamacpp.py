"""llama.cpp on this machine through llama-cpp-python, with llama.cpp's own counters.

Specs: `llamacpp/<catalog id>` for a bundled model, `llamacpp/<path>.gguf` for any file.
Each model runs in an engine process of its own (llamacpp_engine.py): native code that dies of a
signal (an instruction the CPU lacks, a malformed GGUF) takes that process, not the run; the model's
cells are then recorded as failed with the signal named, and the other models go on. The harness
reads the stream from a socket and owns the clock.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO

import psutil

from ..catalog import bundled_path, get_model, load_catalog
from ..tools import ToolCallDelta
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
from .llamacpp_engine import stop_scan as _stop_scan  # noqa: F401 (re-exported: the tests' import path)

ENGINE_FILE = Path(__file__).with_name("llamacpp_engine.py")
START_TIMEOUT_S = 120.0  # the engine process's import of llama-cpp-python
POLL_S = 0.05  # how long the stream waits on the socket before letting the harness check its limits
CANCEL_WAIT_S = 10.0  # for a cancelled generation to stop before its process is killed
# What each way of dying usually means, and what to do about it.
_SIGNAL_HINTS = {
    "SIGILL": "illegal instruction: this llama.cpp build uses an instruction the CPU cannot run; run `make install` "
              "again, which rebuilds the engine for this CPU and checks it (README, 'The engine')",
    "SIGSEGV": "segmentation fault: often a malformed or truncated GGUF file (check its size and sha256), else a "
               "llama.cpp bug",
    "SIGBUS": "bus error: the GGUF file is truncated or was changed while mapped",
    "SIGABRT": "llama.cpp aborted (an assertion failed): its message is below",
    "SIGKILL": "killed from outside, often by the out-of-memory killer: the model may not fit in RAM",
}


def supports_gpu_offload() -> bool:
    """Whether this llama-cpp-python build can put layers on a GPU (CUDA, Metal, ...)."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def gguf_path_for(model: str) -> Path:
    """The GGUF file a `llamacpp/<model>` spec names; BackendError naming the model if none."""
    if model.endswith(".gguf"):
        path = Path(model).expanduser()
        if path.is_dir():
            raise BackendError(f"llamacpp/{model}: {path} is a folder, not a GGUF file; name the .gguf file in it")
        if path.exists() and not path.is_file():
            raise BackendError(f"llamacpp/{model}: {path} is not a regular file (a FIFO or a device); "
                               "name a .gguf file")
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


# How the tools of a request reach a model in this process (said in each tool generation's row).
TOOLS_NOTES = {
    "template": "llama.cpp: tools through the model's own chat template; calls read from its <tool_call> blocks",
    "grammar": "llama.cpp: the model's chat template carries no tools, so they are described in the system "
               "message and each answer is grammar-constrained to a message or a call whose arguments match "
               "the tool's schema (as chatml-function-calling does)",
}


class EngineDied(BackendError):
    """The engine process died (of a signal, or exited); the message names the model and the signal."""


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


class LlamaCppBackend(Backend):
    cold_switch = "reset"  # the engine process clears its KV cache before every generation

    @classmethod
    def identity(cls, spec) -> dict:
        """The GGUF file run: its path, size and sha256."""
        from ..catalog import file_sha256

        try:
            path = bundled_path(spec.model) if not spec.model.endswith(".gguf") else Path(spec.model).expanduser()
            return {"file": str(path), "size_bytes": path.stat().st_size, "sha256": file_sha256(path)}
        except (BackendError, OSError) as exc:
            return {"file": spec.model, "error": str(exc)}

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
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._log: IO[bytes] | None = None  # the engine process's stdout and stderr, read back when it dies
        self._lock = threading.Lock()
        self._loaded_opts: dict | None = None
        self._rss_mb: float | None = None
        self.tools_note: str | None = None
        self.engine_n_ctx: int | None = None
        self._died: str | None = None  # why the engine process died: its later requests fail at once

    @property
    def _name(self) -> str:
        return f"llamacpp/{self.path.name}"

    # -- the engine process -------------------------------------------------------
    def prepare(self) -> None:
        """Start the engine process (it imports llama-cpp-python) before the load is timed."""
        if self._died:
            raise EngineDied(self._died)
        if self._proc is not None and self._proc.poll() is None:
            return
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (open while the process lives; read when it dies)
        here, there = socket.socketpair()
        try:
            self._proc = subprocess.Popen([sys.executable, str(ENGINE_FILE), str(there.fileno())],
                                          pass_fds=[there.fileno()], stdin=subprocess.DEVNULL, stdout=self._log,
                                          stderr=self._log, close_fds=True)
        finally:
            there.close()
        self._conn = Connection(here.detach())
        self._loaded_opts = None
        msg = self._recv(START_TIMEOUT_S, "starting the engine process")
        if msg[0] != "ready":
            raise BackendError(f"{self._name}: the engine process did not start: {msg}")

    def process_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _dead(self, during: str) -> EngineDied:
        """The engine process has gone: why, with the signal named, remembered for later requests."""
        proc = self._proc
        rc = None
        if proc is not None:
            try:
                rc = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        said = ""
        if self._log is not None:
            try:
                self._log.seek(0)
                said = self._log.read()[-800:].decode("utf-8", "replace").strip()
            except (OSError, ValueError):
                pass
        if rc is not None and rc < 0:
            name = _signal_name(rc)
            how = f"died of {name} ({_SIGNAL_HINTS.get(name, 'killed by a signal')})"
        else:
            how = f"exited (code {rc})"
        self._died = (f"{self._name}: the llama.cpp engine process {how} while {during}; the model's remaining "
                      f"cases are not run" + (f". It printed: {said}" if said else ""))
        self._shutdown(kill=True)
        return EngineDied(self._died)

    def _recv(self, timeout_s: float | None, during: str):
        conn = self._conn
        if conn is None:
            raise BackendError(f"{self._name}: the engine process is not running")
        try:
            if timeout_s is not None and not conn.poll(timeout_s):
                self._shutdown(kill=True)
                raise BackendError(f"{self._name}: no answer from the engine process within {timeout_s:g} s "
                                   f"while {during}")
            return conn.recv()
        except (EOFError, OSError):
            raise self._dead(during) from None

    def _send(self, msg, during: str) -> None:
        if self._conn is None:
            raise BackendError(f"{self._name}: the engine process is not running")
        try:
            self._conn.send(msg)
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise self._dead(during) from None

    def _shutdown(self, kill: bool = False) -> None:
        proc, conn, log = self._proc, self._conn, self._log
        self._proc = self._conn = self._log = None
        self._loaded_opts = None
        if proc is not None and proc.poll() is None:
            if not kill and conn is not None:
                try:
                    conn.send(("close",))
                    proc.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for f in (conn, log):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass

    # -- the Backend interface ----------------------------------------------------
    def load(self) -> None:
        if self.n_ctx is None:
            self.n_ctx = min(self.trained_context() or FALLBACK_CONTEXT, self.max_context)
            self.context_tokens = self.n_ctx
        with self._lock:
            self._load_in_engine({"path": str(self.path), "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                                  "n_gpu_layers": self.n_gpu_layers, "chat_format": self.chat_format,
                                  "chat_template": self.chat_template, "stop": self.stop}, "loading the model")

    def _load_in_engine(self, opts: dict, during: str) -> None:
        """Start the engine process if needed and load the model into it (the caller holds the lock)."""
        self.prepare()
        self._send(("load", opts), during)
        msg = self._recv(None, during)
        if msg[0] == "error":
            raise BackendError(f"{self._name}: {msg[2]}")
        self._loaded_opts = opts
        self._rss_mb = msg[1]["rss_mb"]
        self.engine_n_ctx = msg[1]["n_ctx"]  # the context llama.cpp allocated
        self.tools_note = TOOLS_NOTES[msg[1].get("tools_route", "grammar")]

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
            raise BackendError(f"{self._name}: could not read {self.path}: {exc}") from exc

    def close(self) -> None:
        if self._lock.acquire(timeout=1.0):
            try:
                self._shutdown()
            finally:
                self._lock.release()
        else:  # a request is under way in another thread (a load past its timeout): end it
            self._shutdown(kill=True)

    def footprint_mb(self) -> float | None:
        # the weights file plus a fifth for the KV cache and buffers
        return self.path.stat().st_size / 2**20 * 1.2

    def memory_mb(self) -> dict:
        from ..hostinfo import process_vram_mb

        pid = self.process_pid()
        return {"rss_mb": self._rss_mb, "vram_mb": process_vram_mb(pid) if pid else None}

    def stream(self, messages: list[dict], params: GenParams) -> Iterator[Chunk]:
        """Answer text as the engine process sends it; an empty string whenever nothing came for
        POLL_S, so the harness can check cancel and its timeouts (empty text is not a token)."""
        if self._died:
            raise EngineDied(self._died)
        if self._loaded_opts is None:
            self.load()
        with self._lock:
            conn = self._conn
            assert conn is not None
            self._send(("stream", messages, dataclasses.asdict(params)), "generating")
            report: EngineReport | None = None
            done = False
            try:
                while True:
                    try:
                        ready = conn.poll(POLL_S)
                    except (EOFError, OSError):
                        ready = True  # recv below says how the process went
                    if not ready:
                        yield ""
                        continue
                    msg = self._recv(None, "generating")
                    kind = msg[0]
                    if kind == "chunk":
                        yield msg[1]
                    elif kind == "call":
                        yield ToolCallDelta(msg[1], None, msg[2], msg[3])
                    elif kind == "report":
                        report = EngineReport(**msg[1])
                        if params.tools:
                            report.extra["tools_note"] = self.tools_note
                    elif kind == "end":
                        done = True
                        if report is None:
                            raise BackendError(f"{self._name}: the engine sent no report")
                        yield report
                        return
                    elif kind == "error":
                        done = True
                        raise (ContextOverflow if msg[1] == "overflow" else BackendError)(
                            msg[2] if msg[1] == "overflow" else f"{self._name}: {msg[2]}")
            finally:
                if not done and self._died is None and self._conn is not None:
                    self._stop_generation()

    def _stop_generation(self) -> None:
        """The reader went away mid-stream (cancel, a timeout): stop the engine's generation and
        read what it still sends; a process that does not stop in time is restarted and reloaded."""
        conn = self._conn
        opts = self._loaded_opts
        try:
            assert conn is not None
            conn.send(("cancel",))
            waited = 0.0
            while waited < CANCEL_WAIT_S:
                if conn.poll(POLL_S):
                    if conn.recv()[0] in ("end", "error"):
                        return
                else:
                    waited += POLL_S
        except (EOFError, OSError, AssertionError):
            pass
        self._shutdown(kill=True)
        if opts is not None:  # ready for the next case, so its timing does not carry this reload
            self._load_in_engine(opts, "reloading the model")

    def __del__(self):
        try:
            self._shutdown(kill=True)
        except Exception:
            pass


register_backend("llamacpp", LlamaCppBackend)
