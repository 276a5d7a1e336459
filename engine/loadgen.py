"""The load sweep's requests: sent, streamed and timed, from this process or from several.

A level is a list of requests sent either closed-loop (at most `c` in flight) or open-loop (each at
its arrival time, whatever is in flight). One Python process reads a few tens of thousands of
streamed chunks a second; a level of many fast streams can outpace that, and then the client, not the
server, would be measured. `Clients` runs a level's requests in several processes at once: each takes
an equal share (closed loop: an equal share of the concurrency too; open loop: every P-th arrival),
all start at one moment, and what is in flight and whether the server saturated are shared, so a
level reads the same whatever number of processes sent it.
"""
from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import queue
import time
from dataclasses import dataclass, field

import numpy as np

from .backends import BackendError, EngineReport, Retried, resolve
from .recorder import implausible_token_count
from .store import utcnow
from .timing import StreamTiming

SATURATION_TTFT = 2.0  # the latest TTFTs this many times the first ones: a queue is building
SATURATION_IN_FLIGHT = 4  # and at least this many requests waiting or running
STREAMS_PER_CLIENT = 32  # one client process per this many streams in flight, at most one per CPU
MAX_CLIENTS = 64
START_S = 0.5  # the processes of a level start together, this long after it is handed out (each makes its client)


@dataclass
class Sample:
    ok: bool = False
    error: str | None = None
    ttft_ms: float | None = None
    e2e_ms: float | None = None
    output_tokens: int | None = None
    tokens_source: str | None = None
    gaps_ms: list = field(default_factory=list)
    started_at: object = None
    request_id: str | None = None


def clients_for(streams: float, cpus: int | None = None) -> int:
    """Client processes for a level of this many streams in flight (a rate counts its requests a
    second): one per STREAMS_PER_CLIENT, at most one per CPU."""
    cpus = cpus or os.cpu_count() or 1
    return max(1, min(cpus, int(streams // STREAMS_PER_CLIENT)))


async def one(backend, messages, params, client) -> Sample:
    s = Sample(started_at=utcnow())
    clock = time.perf_counter
    t0 = clock()
    timing = StreamTiming(t0)  # the runner's own timing loop
    said = 0  # bytes of text that arrived, to hold a server's token count against
    try:
        async for item in backend.astream(messages, params, client=client):
            if isinstance(item, Retried):  # under load a rate limit's wait is what a user waits: kept in the clock
                continue
            if isinstance(item, EngineReport):
                doubt = implausible_token_count(item.output_tokens, said, timing.chunks) \
                    if item.tokens_from_engine else None
                if doubt:  # as in a run: the server's word is not taken, the stream's count is
                    s.output_tokens, s.tokens_source = timing.chunks, "stream"
                    s.ok = True
                    s.request_id = item.extra.get("request_id")
                    break
                s.output_tokens = item.output_tokens if item.output_tokens is not None else timing.chunks
                s.tokens_source = "engine" if item.tokens_from_engine else "stream"
                s.request_id = item.extra.get("request_id")
                s.ok = True
                break
            if isinstance(item, str):
                said += len(item.encode("utf-8"))
            elif hasattr(item, "text"):
                said += len(item.text.encode("utf-8"))
            timing.chunk(item, clock())
        else:
            s.error = "stream ended without the engine's final report"
    except asyncio.CancelledError:
        s.error = "cancelled: the level's time limit was reached"
    except Exception as exc:
        s.error = f"{type(exc).__name__}: {exc}"
    s.e2e_ms = (clock() - t0) * 1000
    s.ttft_ms = timing.ttft_s * 1000 if timing.ttft_s is not None else None
    s.gaps_ms = timing.gaps_ms
    if not s.ok and s.output_tokens is None:
        s.output_tokens = timing.chunks or None
    return s


def cold(messages: list[dict]) -> list[dict]:
    """The request with a unique marker at its very start (the runner's cold mode)."""
    from .runner import cache_marker

    return [{**messages[0], "content": f"{cache_marker()} {messages[0]['content']}"}, *messages[1:]]


def level_requests(prompts: list, n: int) -> list:
    """The level's n requests: the scenario's prompts in turn."""
    return list(itertools.islice(itertools.cycle(prompts), n))


async def _until(t: float) -> None:
    if (wait := t - time.monotonic()) > 0:
        await asyncio.sleep(wait)


async def _start(t0: float | None) -> float:
    """The level's start: the moment given (the processes of one level start together), or now."""
    if t0 is None:
        return time.monotonic()
    await _until(t0)
    return t0


async def closed_level(backend, items: list, params, c: int, timeout_s: float, t0: float | None = None,
                       cancel=None, on_request=None, is_cold: bool = True) -> tuple[list[Sample], float, float]:
    """`items` with at most c in flight, from monotonic time t0 (None: as soon as the client is ready);
    (samples, monotonic start, monotonic end)."""
    sem = asyncio.Semaphore(c)
    async with backend.async_client(c) as client:
        t0 = await _start(t0)
        deadline = t0 + timeout_s

        async def bounded(messages):
            async with sem:
                if cancel is not None and cancel.is_set():
                    sample = Sample(error="not sent: cancelled", started_at=utcnow())
                elif time.monotonic() > deadline:
                    sample = Sample(error="not sent: the level's time limit was reached", started_at=utcnow())
                else:
                    sample = await one(backend, cold(messages) if is_cold else messages, params, client)
            if on_request:
                on_request(sample)
            return sample

        tasks = [asyncio.create_task(bounded(m)) for m in items]
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - time.monotonic()) + 5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        end = time.monotonic()
    return [t.result() if not t.cancelled() else Sample(error="cancelled", started_at=utcnow()) for t in tasks], \
        t0, end


def saturated(in_flight: int, ttft_ms: list[float]) -> bool:
    """Arrivals outpace completions: TTFT rising through the level (the median of the last three
    completed requests over that of the first three, by SATURATION_TTFT) while requests pile up. A
    server that keeps up holds its TTFT steady, however many requests are in flight."""
    if len(ttft_ms) < 6 or in_flight < SATURATION_IN_FLIGHT:
        return False
    return float(np.median(ttft_ms[-3:])) > SATURATION_TTFT * float(np.median(ttft_ms[:3]))


class Flight:
    """Requests in flight now and at most, and whether the level stopped for saturation: one process's."""

    def __init__(self):
        self.now = self.peak = 0
        self.full = False

    def up(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    def down(self) -> None:
        self.now -= 1

    def in_flight(self) -> int:
        return self.now

    def saturate(self) -> None:
        self.full = True

    def is_saturated(self) -> bool:
        return self.full


class SharedFlight(Flight):
    """The same, counted across the processes that send one level."""

    def __init__(self, now, peak, full):
        self._now, self._peak, self._full = now, peak, full  # multiprocessing Values and an Event

    def up(self) -> None:
        with self._now.get_lock():
            self._now.value += 1
            n = self._now.value
        with self._peak.get_lock():
            self._peak.value = max(self._peak.value, n)

    def down(self) -> None:
        with self._now.get_lock():
            self._now.value -= 1

    def in_flight(self) -> int:
        return self._now.value

    def saturate(self) -> None:
        self._full.set()

    def is_saturated(self) -> bool:
        return self._full.is_set()


def arrivals(rate: float, n: int, seed: int) -> list[float]:
    """n Poisson arrival times (s from the level's start) at `rate` per second, seeded; the first at 0."""
    gaps = np.random.default_rng(seed).exponential(1 / rate, n)
    return [float(x) for x in np.cumsum(gaps) - gaps[0]]


async def open_level(backend, schedule: list, params, timeout_s: float, t0: float | None = None, cancel=None,
                     on_request=None, is_cold: bool = True,
                     flight: Flight | None = None) -> tuple[list[Sample], float, float]:
    """`schedule` = [(arrival s after t0, messages)], each sent at its time whatever is in flight (open
    loop); (samples, monotonic start, monotonic end). A saturated level stops sending (here and, through
    a shared flight, in the level's other processes); what was not sent is a sample saying why."""
    flight = flight or Flight()
    ttft: list[float] = []
    stop = None
    async with backend.async_client(256) as client:
        t0 = await _start(t0)
        deadline = t0 + timeout_s
        async def send(messages):
            flight.up()
            try:
                sample = await one(backend, cold(messages) if is_cold else messages, params, client)
            finally:
                flight.down()
            if sample.ok and sample.ttft_ms is not None:
                ttft.append(sample.ttft_ms)
            if on_request:
                on_request(sample)
            return sample

        tasks = []
        for at, messages in schedule:
            await _until(t0 + at)
            if cancel is not None and cancel.is_set():
                stop = "not sent: cancelled"
            elif time.monotonic() > deadline:
                stop = "not sent: the level's time limit was reached"
            elif flight.is_saturated() or saturated(flight.in_flight(), ttft):
                flight.saturate()
                stop = "not sent: the server was saturated at this rate"
            if stop:
                break
            tasks.append(asyncio.create_task(send(messages)))
        _, pending = await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()) + 5) if tasks \
            else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        end = time.monotonic()
    samples = [t.result() if not t.cancelled() else Sample(error="cancelled", started_at=utcnow()) for t in tasks]
    samples += [Sample(error=stop or "not sent", started_at=utcnow()) for _ in range(len(schedule) - len(tasks))]
    return samples, t0, end


async def warm(backend, prompts, params, n: int, is_cold: bool = True) -> None:
    """Untimed requests before a level (a server's first requests can be slow for reasons of its own)."""
    async with backend.async_client(1) as client:
        for messages in level_requests(prompts, n):
            await one(backend, cold(messages) if is_cold else messages, params, client)


def split(items: list, parts: int) -> list[list]:
    """Every parts-th item to each part, in turn (arrivals stay spread over the level in each)."""
    return [items[k::parts] for k in range(parts)]


def _client(conn, spec: str, timeout_s: float, progress, cancel, now, peak, full) -> None:
    """A client process: its own backend, then levels as they are handed to it, until told to stop."""
    try:
        backend = resolve(spec, timeout_s=timeout_s)
    except Exception as exc:  # said to the sweep, which stops with it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    flight = SharedFlight(now, peak, full)
    try:
        while (task := conn.recv()) is not None:
            kind, items, params, c, timeout_s, t0, is_cold = task

            def count(_sample):
                progress.put(1)

            try:
                if kind == "closed":
                    out = asyncio.run(closed_level(backend, items, params, c, timeout_s, t0, cancel, count, is_cold))
                else:
                    out = asyncio.run(open_level(backend, items, params, timeout_s, t0, cancel, count, is_cold,
                                                 flight))
                conn.send(("ok", out))
            except Exception as exc:  # noqa: BLE001 - the sweep says what broke
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        backend.close()


class Clients:
    """`n` client processes that send a level's requests together, started once for a sweep (spawned:
    nothing of this process is copied into them) and stopped with it."""

    def __init__(self, spec: str, timeout_s: float, n: int, start_timeout_s: float = 120.0):
        ctx = multiprocessing.get_context("spawn")
        self.n = n
        self.progress, self.cancel = ctx.Queue(), ctx.Event()
        self.now, self.peak, self.full = ctx.Value("i", 0), ctx.Value("i", 0), ctx.Event()
        self.conns, self.procs = [], []
        try:
            for _ in range(n):
                mine, theirs = ctx.Pipe()
                p = ctx.Process(target=_client, args=(theirs, spec, timeout_s, self.progress, self.cancel,
                                                      self.now, self.peak, self.full), daemon=True,
                                name="modelpick-load-client")
                p.start()
                theirs.close()
                self.conns.append(mine)
                self.procs.append(p)
            for conn in self.conns:
                if not conn.poll(start_timeout_s):
                    raise BackendError(f"{spec}: a load client process did not start in {start_timeout_s:g} s")
                what, detail = self._recv(conn, spec)
                if what == "error":
                    raise BackendError(f"{spec}: a load client process could not start: {detail}")
        except BaseException:
            self.close()
            raise

    def _recv(self, conn, spec):
        try:
            return conn.recv()
        except (EOFError, OSError):
            raise BackendError(f"{spec}: a load client process died (out of memory, or killed)") from None

    def run(self, kind: str, items: list, params, c: int, timeout_s: float, is_cold: bool,
            cancel=None, on_request=None, processes: int | None = None) -> tuple[list[Sample], float, float, bool, int]:
        """A level's requests shared among `processes` of them (default all): "closed", items with at
        most c in flight in all, each process an equal share of both; "open", a schedule, every n-th
        arrival to each. All start together; (samples in the order they started, start, end (monotonic), saturated, most
        in flight)."""
        n = min(processes or self.n, self.n, len(items))
        parts = split(items, min(n, c) if kind == "closed" else n)  # closed: no process without a client
        cs = [len(s) for s in split(list(range(c)), len(parts))] if kind == "closed" else [0] * len(parts)
        self.cancel.clear()
        self.full.clear()
        self.now.value = self.peak.value = 0
        t0 = time.monotonic() + START_S
        for conn, part, c in zip(self.conns[:len(parts)], parts, cs, strict=True):
            conn.send((kind, part, params, c, timeout_s, t0, is_cold))
        results: dict[int, tuple] = {}
        while len(results) < len(parts):
            self._drain(on_request, 0.05)
            if cancel is not None and cancel.is_set():
                self.cancel.set()
            for k, conn in enumerate(self.conns[:len(parts)]):
                if k not in results and conn.poll():
                    what, out = self._recv(conn, "the load sweep")
                    if what == "error":
                        raise BackendError(f"a load client process failed: {out}")
                    results[k] = out
            for k, p in enumerate(self.procs[:len(parts)]):
                if k not in results and not p.is_alive() and not self.conns[k].poll():
                    raise BackendError("a load client process died (out of memory, or killed)")
        self._drain(on_request, 0)
        samples = sorted((s for k in results for s in results[k][0]), key=lambda s: s.started_at)
        end = max(results[k][2] for k in results)
        return samples, t0, end, self.full.is_set(), self.peak.value

    def _drain(self, on_request, wait: float) -> None:
        try:
            self.progress.get(timeout=wait) if wait else self.progress.get_nowait()
            if on_request:
                on_request(None)
            while True:
                self.progress.get_nowait()
                if on_request:
                    on_request(None)
        except queue.Empty:
            pass

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        for conn in self.conns:
            conn.close()
        self.conns, self.procs = [], []
