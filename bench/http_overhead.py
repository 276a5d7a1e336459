"""What the harness adds to an HTTP request, against a loopback server that answers at once.

Side by side in one run, alternating rounds:
  raw:     httpx reads the server-sent events and does nothing else;
  harness: the OpenAI-compatible backend parses them and the sweep's clock times them
           (the async path the load sweep uses; the runner's sync path at concurrency 1).
Prints median end-to-end per request for each, the added latency (harness - raw) at
concurrency 1 and 64, and streamed chunks per second through each at concurrency 1 with
long answers. Goals: added median < 1 ms at concurrency 1; the harness is not the limit
below 2,000 chunks/s.

    .venv/bin/python bench/http_overhead.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from engine.backends import EngineReport, GenParams, resolve  # noqa: E402
from engine.backends.openai_compat import OpenAIBackend  # noqa: E402
from engine.sweep import _one  # noqa: E402
from tests.fakeservers import FakeServer, OpenAIHandler  # noqa: E402

MESSAGES = [{"role": "user", "content": "Say something."}]


async def raw_level(url: str, body: dict, c: int, n: int) -> tuple[list[float], int, float]:
    sem = asyncio.Semaphore(c)
    chunks = 0

    async def one(client):
        nonlocal chunks
        async with sem:
            t0 = time.perf_counter()
            async with client.stream("POST", url, json=body) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        chunks += 1
            return (time.perf_counter() - t0) * 1000

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=c)) as client:
        t0 = time.perf_counter()
        e2e = await asyncio.gather(*(one(client) for _ in range(n)))
        return list(e2e), chunks, time.perf_counter() - t0


async def harness_level(backend, params, c: int, n: int) -> tuple[list[float], int, float]:
    sem = asyncio.Semaphore(c)

    async def one(client):
        async with sem:
            return await _one(backend, MESSAGES, params, client)

    async with backend.async_client(c) as client:
        t0 = time.perf_counter()
        samples = await asyncio.gather(*(one(client) for _ in range(n)))
        wall = time.perf_counter() - t0
    assert all(s.ok for s in samples), [s.error for s in samples if not s.ok][:3]
    return [s.e2e_ms for s in samples], sum(len(s.gaps_ms) + 1 for s in samples), wall


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
    with FakeServer(OpenAIHandler, delay_s=0) as srv:
        base = f"{srv.url}/v1"
        backend = cast(OpenAIBackend, resolve(f"openai/echo@{base}"))
        params = GenParams(max_tokens=16)
        url, body = backend.request(MESSAGES, params)
        results: dict[str, list[float]] = {k: [] for k in ("raw1", "har1", "raw64", "har64", "sraw1", "shar1")}
        for r in range(args.rounds):
            for c, n, key in ((1, 200, "1"), (64, 512, "64")):
                raw_e2e, _, _ = asyncio.run(raw_level(url, body, c, n))
                har_e2e, _, _ = asyncio.run(harness_level(backend, params, c, n))
                results["raw" + key].append(med(raw_e2e))
                results["har" + key].append(med(har_e2e))
            results["sraw1"].append(med(sync_raw(url, body, 200)))
            results["shar1"].append(med(sync_harness(backend, params, 200)))
            print(f"round {r + 1}: c=1 raw {results['raw1'][-1]:.3f} ms harness {results['har1'][-1]:.3f} ms; "
                  f"c=64 raw {results['raw64'][-1]:.2f} ms harness {results['har64'][-1]:.2f} ms; "
                  f"sync c=1 raw {results['sraw1'][-1]:.3f} ms runner path {results['shar1'][-1]:.3f} ms",
                  flush=True)
        backend.close()
    with FakeServer(OpenAIHandler, delay_s=0, burst=1000) as srv:
        backend = cast(OpenAIBackend, resolve(f"openai/echo@{srv.url}/v1"))
        params = GenParams(max_tokens=1000)
        url, body = backend.request(MESSAGES, params)
        raw_rates, har_rates = [], []
        for _ in range(args.rounds):
            _, chunks, wall = asyncio.run(raw_level(url, body, 1, 20))
            raw_rates.append(chunks / wall)
            _, chunks, wall = asyncio.run(harness_level(backend, params, 1, 20))
            har_rates.append(chunks / wall)
        print(f"streamed chunks/s at c=1 (1000-chunk answers): raw {med(raw_rates):.0f}, harness {med(har_rates):.0f}")
    added1 = med(results["har1"]) - med(results["raw1"])
    added64 = med(results["har64"]) - med(results["raw64"])
    added_sync = med(results["shar1"]) - med(results["sraw1"])
    print(f"added_ms_c1={added1:.3f} added_ms_c64={added64:.3f} added_ms_sync_c1={added_sync:.3f} "
          f"harness_chunks_per_s={med(har_rates):.0f} raw_chunks_per_s={med(raw_rates):.0f}")


if __name__ == "__main__":
    main()
