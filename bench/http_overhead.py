"""What the harness adds to an HTTP request, against a loopback server that answers at once.

Side by side in one run, alternating rounds:
  raw:     httpx reads the server-sent events and does nothing else (its first token: the first
           event with text in it);
  harness: the OpenAI-compatible backend parses them and the sweep's clock times them
           (the async path the load sweep uses; the runner's sync path at concurrency 1).
Prints, per round, median TTFT and end-to-end per request for each at concurrency 1 and 64, and
streamed chunks per second through each at 1 and 64 concurrent streams of long answers (at 64: the
harness in one process, and in the client processes a sweep uses at 64 streams). Goals: the harness
adds under 1 ms to TTFT p50 at 64 streams, and keeps up with the chunk rate the bare client reads
(harness over raw chunks/s near 1). The server (asyncio, each answer written whole at once, in the
fake OpenAI-compatible server's words) runs in a process of its own.

    .venv/bin/python bench/http_overhead.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from engine import loadgen  # noqa: E402
from engine.backends import EngineReport, GenParams, resolve  # noqa: E402
from engine.backends.openai_compat import OpenAIBackend  # noqa: E402
from engine.loadgen import one as _one  # noqa: E402
from tests.conftest import free_port  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say something."}]


def _answer(n: int) -> bytes:
    """The whole streamed answer of n tokens, as the fake OpenAI-compatible server words it (a role
    chunk, n text chunks, a finish chunk, a usage chunk, [DONE]), each event an HTTP chunk of its own."""
    base = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "echo"}

    def choice(delta, finish=None):
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [choice({"role": "assistant", "content": ""})] + [choice({"content": " tok"}) for _ in range(n)] + \
        [choice({}, "length"), {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": n,
                                                                  "total_tokens": n + 3}}]
    body = b"".join(b"%x\r\n%s\r\n" % (len(d), d) for d in
                    [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"])
    return b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" + body + \
        b"0\r\n\r\n"


def _serve(port: int) -> None:
    """A server that answers at once: asyncio, the answer for each max_tokens made once and written whole."""
    answers: dict[int, bytes] = {}

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                body = json.loads(await reader.readexactly(int(m.group(1)))) if m else {}
                if head.startswith(b"GET"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                                 b'{"data":[]}')
                else:
                    n = int(body.get("max_tokens") or 16)
                    writer.write(answers.get(n) or answers.setdefault(n, _answer(n)))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@contextmanager
def server_apart():
    """The loopback server in a process of its own, so that it does not take the client's interpreter
    lock and answers at once, however many streams are open; yields its base URL."""
    port = free_port()
    proc = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/v1/models", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or not proc.is_alive():
                    raise SystemExit("the loopback server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.join(5)


def _first_text(line: str) -> bool:
    compact = line.replace('": "', '":"')
    return line.startswith("data:") and '"content":"' in compact and '"content":""' not in compact


async def raw_level(url: str, body: dict, c: int, n: int) -> tuple[list[float], list[float], int, float]:
    """(TTFT ms, end-to-end ms, chunks read, wall s) of n requests, c at a time, through bare httpx."""
    sem = asyncio.Semaphore(c)
    chunks = 0

    async def one(client):
        nonlocal chunks
        async with sem:
            t0 = time.perf_counter()
            ttft = None
            async with client.stream("POST", url, json=body) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        chunks += 1
                        if ttft is None and _first_text(line):
                            ttft = (time.perf_counter() - t0) * 1000
            return ttft, (time.perf_counter() - t0) * 1000

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=c)) as client:
        t0 = time.perf_counter()
        out = await asyncio.gather(*(one(client) for _ in range(n)))
        wall = time.perf_counter() - t0
    return [t for t, _ in out], [e for _, e in out], chunks, wall


async def harness_level(backend, params, c: int, n: int) -> tuple[list[float], list[float], int, float]:
    """The same through the backend and the sweep's timing of each request."""
    sem = asyncio.Semaphore(c)

    async def one(client):
        async with sem:
            return await _one(backend, MESSAGES, params, client)

    async with backend.async_client(c) as client:
        t0 = time.perf_counter()
        samples = await asyncio.gather(*(one(client) for _ in range(n)))
        wall = time.perf_counter() - t0
    assert all(s.ok for s in samples), [s.error for s in samples if not s.ok][:3]
    return [s.ttft_ms for s in samples], [s.e2e_ms for s in samples], \
        sum(len(s.gaps_ms) + 1 for s in samples), wall


def clients_level(spec: str, params, c: int, n: int, clients: int) -> tuple[list[float], int, float]:
    """(TTFT ms, chunks read, wall s) of n requests, c at a time, sent by the sweep's client processes."""
    pool = loadgen.Clients(spec, 60.0, clients)
    try:
        samples, t0, end, _, _ = pool.run("closed", loadgen.level_requests([MESSAGES], n), params, c, 60.0, False)
    finally:
        pool.close()
    assert all(s.ok for s in samples), [s.error for s in samples if not s.ok][:3]
    return [s.ttft_ms for s in samples if s.ttft_ms is not None], sum(len(s.gaps_ms) + 1 for s in samples), end - t0


def sync_harness(backend, params, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        for item in backend.stream(MESSAGES, params):
            if isinstance(item, EngineReport):
                break
        out.append((time.perf_counter() - t0) * 1000)
    return out


def sync_raw(url: str, body: dict, n: int) -> list[float]:
    out = []
    with httpx.Client(timeout=60) as client:
        for _ in range(n):
            t0 = time.perf_counter()
            with client.stream("POST", url, json=body) as r:
                for _line in r.iter_lines():
                    pass
            out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    med = statistics.median
    keys = ("ttft_raw1", "ttft_har1", "ttft_raw64", "ttft_har64", "ttft_cli64", "e2e_raw1", "e2e_har1", "e2e_raw64",
            "e2e_har64", "sraw1", "shar1")
    results: dict[str, list[float]] = {k: [] for k in keys}
    clients = loadgen.clients_for(64)  # what a sweep at 64 streams uses by default on this machine
    with server_apart() as server:
        backend = cast(OpenAIBackend, resolve(f"openai/echo@{server}/v1"))
        params = GenParams(max_tokens=16)
        url, body = backend.request(MESSAGES, params)
        for r in range(args.rounds):
            for c, n in ((1, 200), (64, 512)):
                raw_ttft, raw_e2e, _, _ = asyncio.run(raw_level(url, body, c, n))
                har_ttft, har_e2e, _, _ = asyncio.run(harness_level(backend, params, c, n))
                results[f"ttft_raw{c}"].append(med(raw_ttft))
                results[f"ttft_har{c}"].append(med(har_ttft))
                results[f"e2e_raw{c}"].append(med(raw_e2e))
                results[f"e2e_har{c}"].append(med(har_e2e))
            results["ttft_cli64"].append(med(clients_level(f"openai/echo@{server}/v1", params, 64, 512, clients)[0]))
            results["sraw1"].append(med(sync_raw(url, body, 200)))
            results["shar1"].append(med(sync_harness(backend, params, 200)))
            print(f"round {r + 1}: TTFT p50 c=1 raw {results['ttft_raw1'][-1]:.3f} ms harness "
                  f"{results['ttft_har1'][-1]:.3f} ms; c=64 raw {results['ttft_raw64'][-1]:.2f} ms harness "
                  f"{results['ttft_har64'][-1]:.2f} ms (in {clients} client processes "
                  f"{results['ttft_cli64'][-1]:.2f} ms); e2e p50 c=64 raw {results['e2e_raw64'][-1]:.2f} ms harness "
                  f"{results['e2e_har64'][-1]:.2f} ms; sync c=1 raw {results['sraw1'][-1]:.3f} ms runner path "
                  f"{results['shar1'][-1]:.3f} ms", flush=True)
        backend.close()
    rates: dict[str, list[float]] = {k: [] for k in ("raw1", "har1", "raw64", "har64", "cli64")}
    with server_apart() as server:
        spec = f"openai/echo@{server}/v1"
        backend = cast(OpenAIBackend, resolve(spec))
        params = GenParams(max_tokens=1000)
        url, body = backend.request(MESSAGES, params)
        for _ in range(args.rounds):
            for c, n in ((1, 20), (64, 64)):
                _, _, chunks, wall = asyncio.run(raw_level(url, body, c, n))
                rates[f"raw{c}"].append(chunks / wall)
                _, _, chunks, wall = asyncio.run(harness_level(backend, params, c, n))
                rates[f"har{c}"].append(chunks / wall)
            _, chunks, wall = clients_level(spec, params, 64, 64, clients)
            rates["cli64"].append(chunks / wall)
        backend.close()
        print(f"streamed chunks/s (1000-chunk answers): c=1 raw {med(rates['raw1']):.0f} harness "
              f"{med(rates['har1']):.0f}; c=64 raw {med(rates['raw64']):.0f} harness in one process "
              f"{med(rates['har64']):.0f}, in the sweep's {clients} client processes {med(rates['cli64']):.0f}")

    def added(key: str) -> float:
        return med(results[key.replace("*", "har")]) - med(results[key.replace("*", "raw")])

    print(f"added_ttft_ms_c1={added('ttft_*1'):.3f} added_ttft_ms_c64={added('ttft_*64'):.3f} "
          f"added_ttft_ms_c64_clients={med(results['ttft_cli64']) - med(results['ttft_raw64']):.3f} "
          f"added_e2e_ms_c64={added('e2e_*64'):.3f} "
          f"added_ms_sync_c1={med(results['shar1']) - med(results['sraw1']):.3f} "
          f"harness_over_raw_chunks_per_s_c64={med(rates['cli64']) / med(rates['raw64']):.2f} "
          f"one_process_over_raw_c64={med(rates['har64']) / med(rates['raw64']):.2f} clients={clients} "
          f"harness_chunks_per_s_c64={med(rates['cli64']):.0f} raw_chunks_per_s_c64={med(rates['raw64']):.0f}")


if __name__ == "__main__":
    main()
