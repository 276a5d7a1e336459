"""Load sweep: one HTTP-served model at rising concurrency, as a capacity test.

Per level, N requests go out with at most `c` in flight (asyncio), bounded in count and
time. Stored per level: aggregate output tokens/s, requests/s, TTFT and inter-token
latency p50/p95/p99, end-to-end p50/p95, errors, and goodput against SLOs; raw samples
per request beside them. These figures feed the cost per request.
"""
from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

import numpy as np

from . import loadgen
from .backends import BackendError, GenParams, resolve
from .hostinfo import host_info
from .loadgen import Flight, Sample, closed_level, open_level, saturated
from .scenarios import Scenario
from .servermetrics import difference, scrape
from .store import Store, new_run_id, utcnow

SLO_KEYS = ("ttft_ms", "e2e_ms", "itl_ms")
SLO_SHARE = 0.95  # a level meets the SLOs when this share of the requests sent to it does
RATE_RESOLUTION = 0.1  # the rate search stops when the failing rate is within 10% of the passing one
MIN_RATE, MAX_RATE = 1 / 64, 10_000.0
MAX_CONCURRENCY = 1024


def parse_slo(text: str | None) -> dict[str, float]:
    """`ttft_ms=500,e2e_ms=5000` to a dict; ValueError naming the bad part."""
    slo: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in SLO_KEYS:
            raise ValueError(f"--slo: {part!r} is not KEY=VALUE with KEY one of {', '.join(SLO_KEYS)}")
        try:
            slo[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--slo: {part!r}: {value!r} is not a number") from None
    return slo


def parse_rates(text: str) -> list[float]:
    """`0.5,1,2` to arrival rates per second; ValueError naming the bad part (0, negative, not a number)."""
    import math

    rates = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            rate = float(part)
        except ValueError:
            raise ValueError(f"--rate: {part!r} is not a number of requests per second") from None
        if not math.isfinite(rate) or rate <= 0 or rate > 10_000:
            raise ValueError(f"--rate: {part} must be above 0 and at most 10000 requests per second")
        rates.append(rate)
    if not rates:
        raise ValueError("--rate: give arrival rates per second, e.g. 0.5,1,2,4")
    return rates


def check_search(slo: dict, concurrency: list[int] | None, rates: list[float] | None,
                 where: str = "--find-max") -> None:
    """A search for the highest level needs SLOs to meet, and one kind of level to search."""
    if not slo:
        raise ValueError(f"{where}: needs SLOs to meet, e.g. --slo ttft_ms=800")
    if concurrency and rates:
        raise ValueError(f"{where}: searches rates or concurrency levels, not both: give --rate or --concurrency")
    if len(concurrency or []) > 1 or len(rates or []) > 1:
        raise ValueError(f"{where}: starts from one rate or level, got more than one "
                         f"({','.join(f'{x:g}' for x in (concurrency or rates or []))})")


def next_probe(measured: dict[float, bool], start: float, integer: bool, max_levels: int = 10) -> float | None:
    """The next level a search for the highest one meeting the SLOs measures, from those measured
    so far (level: met); None when it is found or cannot be. From `start` it doubles while levels
    pass, halves while they fail, then bisects between the highest passing level and the lowest
    failing one above it, to the next integer (concurrency) or within RATE_RESOLUTION (rates)."""
    if not measured:
        return start
    if len(measured) >= max_levels:
        return None
    passed = [x for x, ok in measured.items() if ok]
    lo = max(passed) if passed else None
    above = [x for x, ok in measured.items() if not ok and (lo is None or x > lo)]
    hi = min(above) if above else None
    if lo is None:  # nothing meets the SLOs yet: try lower
        assert hi is not None  # something was measured, and failed
        x = hi // 2 if integer else hi / 2
        return None if (x < 1 if integer else x < MIN_RATE) else x
    if hi is None:  # everything measured meets them: try higher, up to the most a sweep sends
        top = MAX_CONCURRENCY if integer else MAX_RATE
        return None if lo >= top else min(lo * 2, top)
    if integer:
        return None if hi - lo <= 1 else (lo + hi) // 2
    if hi / lo <= 1 + RATE_RESOLUTION:
        return None
    return float(f"{(lo + hi) / 2:.3g}")


def highest_met(measured: dict[float, bool]) -> float | None:
    """The highest measured level that met the SLOs; None where none did."""
    passed = [x for x, ok in measured.items() if ok]
    return max(passed) if passed else None


def parse_levels(text: str) -> list[int]:
    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--concurrency: {text!r} is not a list of integers like 1,2,4,8") from None
    if not levels or min(levels) < 1:
        raise ValueError("--concurrency: levels must be positive integers")
    return levels


@dataclass
class SweepConfig:
    model: str
    scenario: Scenario
    concurrency: list[int]
    requests: int | None = None  # per level; default 4 x concurrency, at least 8
    max_tokens: int | None = None
    slo: dict[str, float] = field(default_factory=dict)
    level_timeout_s: float = 120.0
    request_timeout_s: float = 60.0
    cache_mode: str = "cold"  # cold: every request starts with a unique marker; warm: the prompts as they are
    # open-loop levels: Poisson arrivals at these rates per second (seeded), after the concurrency levels
    rates: list[float] = field(default_factory=list)
    warmup: int = 0  # untimed requests sent before each level
    seed: int = 0  # of the arrival times
    # search for the highest rate (or, with concurrency levels, concurrency) that meets the SLOs,
    # starting from the first rate or level given; the levels measured are the sweep's levels
    find_max: bool = False
    slo_share: float = SLO_SHARE  # a level meets the SLOs when this share of its requests does
    max_levels: int = 10  # levels the search measures at most
    # processes that send a level's requests; None: one per 32 streams in flight, at most one per CPU
    clients: int | None = None

    def requests_for(self, c: int) -> int:
        return self.requests or max(8, 4 * c)

    def requests_at(self, rate: float) -> int:
        return self.requests or max(8, math.ceil(8 * rate))

    def as_dict(self) -> dict:
        return {"scenario_id": self.scenario.id, "scenario_source": self.scenario.source_path,
                "model": self.model, "concurrency": self.concurrency, "requests": self.requests,
                "max_tokens": self.max_tokens, "slo": self.slo, "level_timeout_s": self.level_timeout_s,
                "request_timeout_s": self.request_timeout_s, "cache_mode": self.cache_mode, "rates": self.rates,
                "warmup": self.warmup, "seed": self.seed, "find_max": self.find_max,
                "slo_share": self.slo_share, "max_levels": self.max_levels, "clients": self.clients}

    @classmethod
    def from_file(cls, path) -> SweepConfig:
        """A sweep's configuration file (`engine sweep --print-config`); every field checked."""
        from pathlib import Path

        from . import configfile
        from .scenarios import load_scenario

        d = configfile.read(path, configfile.SweepConfigFile)
        source = d.pop("scenario_source", None)
        scenario = load_scenario(source if source and Path(source).is_file() else d.pop("scenario_id"))
        d.pop("scenario_id", None)
        if d.get("concurrency") and min(d["concurrency"]) < 1:
            raise ValueError(f"{path}: field concurrency: levels must be positive integers")
        if not d.get("concurrency") and not d.get("rates"):
            raise ValueError(f"{path}: give concurrency levels or arrival rates (field concurrency or rates)")
        d.setdefault("concurrency", [])
        if d.get("find_max"):
            check_search(d.get("slo") or {}, d.get("concurrency"), d.get("rates"), where=f"{path}: field find_max")
        return cls(scenario=scenario, **d)


def _pct(values, q):
    return float(np.percentile(values, q)) if len(values) else None


def _meets(s: Sample, slo: dict) -> bool:
    if not s.ok:
        return False
    if "ttft_ms" in slo and (s.ttft_ms is None or s.ttft_ms > slo["ttft_ms"]):
        return False
    if "e2e_ms" in slo and s.e2e_ms > slo["e2e_ms"]:
        return False
    return not ("itl_ms" in slo and s.gaps_ms and float(np.mean(s.gaps_ms)) > slo["itl_ms"])


def meets_slo(samples: list[Sample], slo: dict, share: float = SLO_SHARE, saturated: bool = False) -> bool:
    """A level meets the SLOs when `share` of the requests sent to it (those not sent count against it)
    met every bound and it was not saturated."""
    return bool(samples) and not saturated and sum(_meets(s, slo) for s in samples) >= share * len(samples)


def summarise(samples: list[Sample], wall_s: float, c: int, slo: dict) -> dict:
    ok = [s for s in samples if s.ok]
    ttft = [s.ttft_ms for s in ok if s.ttft_ms is not None]
    gaps = [g for s in ok for g in s.gaps_ms]
    e2e = [s.e2e_ms for s in ok]
    tokens = sum(s.output_tokens or 0 for s in ok)
    return {
        "concurrency": c, "requests": len(samples), "ok_requests": len(ok),
        "errors": len(samples) - len(ok), "wall_s": wall_s,
        "output_tok_per_s": tokens / wall_s if wall_s else None,
        "req_per_s": len(ok) / wall_s if wall_s else None,
        "ttft_ms_p50": _pct(ttft, 50), "ttft_ms_p95": _pct(ttft, 95), "ttft_ms_p99": _pct(ttft, 99),
        "itl_ms_p50": _pct(gaps, 50), "itl_ms_p95": _pct(gaps, 95), "itl_ms_p99": _pct(gaps, 99),
        "e2e_ms_p50": _pct(e2e, 50), "e2e_ms_p95": _pct(e2e, 95),
        "goodput_req_per_s": sum(_meets(s, slo) for s in samples) / wall_s if wall_s else None,
    }


def run_sweep(store: Store, config: SweepConfig, on_level=None, on_request=None, cancel=None,
              sweep_id: str | None = None) -> str:
    """Run every level; return the sweep id. Levels are committed as they finish.
    `on_request(level, done, total)` follows each request (done and total over the whole
    sweep); once `cancel` (a threading.Event) is set, no further request is sent and the
    sweep ends as interrupted, keeping the finished levels."""
    sweep = _Sweep(store, config, sweep_id or new_run_id(), on_level, on_request, cancel)
    status, error = "failed", None
    try:
        if config.find_max:
            status = _search(store, config, sweep.sweep_id, sweep.measure)
        else:
            levels = [("concurrency", c) for c in config.concurrency] + [("rate", r) for r in config.rates]
            status = "done"
            for i, (kind, x) in enumerate(levels):
                if sweep.measure(i, kind, x) is None:
                    status = "interrupted"
                    break
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        store.finish_sweep(sweep.sweep_id, status, error)
        sweep.close()
        sweep.backend.close()
    return sweep.sweep_id


class _Sweep:
    """One sweep under way: its backend and requests, its row in the store, its progress."""

    def __init__(self, store: Store, config: SweepConfig, sweep_id: str, on_level, on_request, cancel):
        import json

        self.store, self.config, self.sweep_id = store, config, sweep_id
        self.on_level, self.on_request, self.cancel = on_level, on_request, cancel
        self.backend = resolve(config.model, timeout_s=config.request_timeout_s)
        if not self.backend.streams_async:
            raise BackendError(f"{config.model}: a load sweep needs an HTTP backend (ollama/ or openai/)")
        self.prompts = [c.turn_inputs()[0][0] for c in config.scenario.cases]
        d = config.scenario.defaults
        self.params = GenParams(max_tokens=config.max_tokens or d.max_tokens, temperature=d.temperature,
                                seed=d.seed, cache_prompt=config.cache_mode == "warm")
        self.cold = config.cache_mode == "cold"
        self.backend.load()  # a clear error now if the server or model is missing
        self.server = self.backend.server_url() if self.backend.has_metrics else None
        # a search does not know its levels ahead: its total is what it has sent and the level it sends
        self.total = 0 if config.find_max else \
            sum(config.requests_for(c) for c in config.concurrency) + sum(config.requests_at(r) for r in config.rates)
        self.done = 0
        self.clients: loadgen.Clients | None = None  # started when a level first needs more than one process
        store.insert_rows("sweeps", [{
            "sweep_id": sweep_id, "model_spec": config.model, "scenario_id": config.scenario.id,
            "status": "running", "started_at": utcnow(),
            "config_json": json.dumps({"concurrency": config.concurrency, "rates": config.rates,
                                       "requests": config.requests, "max_tokens": self.params.max_tokens,
                                       "slo": config.slo, "level_timeout_s": config.level_timeout_s,
                                       "planned_requests": self.total or None, "cache_mode": config.cache_mode,
                                       "warmup": config.warmup, "seed": config.seed, "find_max": config.find_max,
                                       "slo_share": config.slo_share, "max_levels": config.max_levels,
                                       "clients": config.clients}),
            "host_json": json.dumps(host_info())}])

    def _scrape(self):
        return scrape(self.server, self.backend.auth_headers()) if self.server else None

    def measure(self, i: int, kind: str, x: float) -> dict | None:
        """One level measured and stored; None when the sweep was cancelled during it."""
        import json

        config, cancel = self.config, self.cancel
        n = config.requests_for(int(x)) if kind == "concurrency" else config.requests_at(x)
        if config.find_max:
            self.total = self.done + n

        def count(_sample):
            self.done += 1
            if self.on_request:
                self.on_request(x, self.done, self.total)

        if config.warmup:
            asyncio.run(loadgen.warm(self.backend, self.prompts, self.params, config.warmup, self.cold))
        before = self._scrape()
        items = loadgen.level_requests(self.prompts, n)
        if kind == "concurrency":
            c = int(x)
            samples, wall, full, _ = self._send("closed", items, c, count)
            extra: dict = {}
        else:
            seed = config.seed + i
            schedule = list(zip(loadgen.arrivals(x, n, seed), items, strict=True))
            samples, wall, full, c = self._send("open", schedule, x, count)
            # a level whose arrivals were all sent before six requests had finished could not stop early;
            # its queue is judged afterwards, over the requests in the order they were sent
            full = full or saturated(c, [s.ttft_ms for s in samples if s.ok and s.ttft_ms is not None])
            extra = {"rate_per_s": x, "saturated": full, "arrival_seed": seed}
        if cancel is not None and cancel.is_set():
            return None  # a level cut short is not a measurement: not stored
        if before is not None:  # the server's own count of the level, where it has /metrics
            extra["server_json"] = json.dumps(difference(before, self._scrape()))
        if config.slo:
            extra["meets_slo"] = meets_slo(samples, config.slo, config.slo_share, full)
        if config.find_max:
            extra["search_step"] = i
        return self._record(samples, wall, c, extra)

    def _send(self, kind: str, items: list, x: float, count) -> tuple[list[Sample], float, bool, int]:
        """A level's requests ("closed": at most x in flight; "open": a schedule of arrivals), from this
        process or, where one process would not keep up, from several; (samples, wall s, saturated, the
        most in flight)."""
        config = self.config
        n = self.config.clients or loadgen.clients_for(x)
        n = max(1, min(n, len(items), int(x) if kind == "closed" else len(items)))
        if n == 1:
            if kind == "closed":
                samples, t0, end = asyncio.run(closed_level(self.backend, items, self.params, int(x),
                                                            config.level_timeout_s, None, self.cancel, count,
                                                            self.cold))
                return samples, end - t0, False, int(x)
            flight = Flight()
            samples, t0, end = asyncio.run(open_level(self.backend, items, self.params, config.level_timeout_s,
                                                      None, self.cancel, count, self.cold, flight))
            return samples, end - t0, flight.full, flight.peak
        if self.clients is None or self.clients.n < n:
            self.close()
            self.clients = loadgen.Clients(config.model, config.request_timeout_s, n)
        samples, t0, end, full, peak = self.clients.run(kind, items, self.params, int(x) if kind == "closed" else 0,
                                                        config.level_timeout_s, self.cold, self.cancel, count, n)
        return samples, end - t0, full, (int(x) if kind == "closed" else peak)

    def close(self) -> None:
        if self.clients is not None:
            self.clients.close()
            self.clients = None

    def _record(self, samples: list[Sample], wall: float, c: int, extra: dict) -> dict:
        import json

        level = {"sweep_id": self.sweep_id, **summarise(samples, wall, c, self.config.slo),
                 "slo_json": json.dumps(self.config.slo), **extra}
        self.store.insert_rows("sweep_requests", [
            {"sweep_id": self.sweep_id, "concurrency": c, "request_index": n, "ok": s.ok, "error": s.error,
             "ttft_ms": s.ttft_ms, "e2e_ms": s.e2e_ms, "output_tokens": s.output_tokens,
             "tokens_source": s.tokens_source, "chunk_gaps_ms": s.gaps_ms, "started_at": s.started_at,
             "rate_per_s": extra.get("rate_per_s"), "request_id": s.request_id}
            for n, s in enumerate(samples)])
        self.store.insert_rows("sweep_levels", [level])
        if self.on_level:
            self.on_level(level)
        return level


def _search(store: Store, config: SweepConfig, sweep_id: str, measure) -> str:
    """The levels of a search for the highest rate (or concurrency) that meets the SLOs, measured in
    the order next_probe gives them; the one found is marked (`sweep_levels.is_max`) and kept on the
    sweep (`sweeps.max_rate_per_s` or `max_concurrency`). The sweep's status."""
    integer = not config.rates
    kind = "concurrency" if integer else "rate"
    start = float(config.concurrency[0]) if integer else config.rates[0]
    measured: dict[float, bool] = {}
    step = 0
    while (x := next_probe(measured, start, integer, config.max_levels)) is not None:
        level = measure(step, kind, int(x) if integer else x)
        if level is None:
            return "interrupted"
        measured[x] = bool(level["meets_slo"])
        step += 1
    best = highest_met(measured)
    if best is not None:
        store.mark_sweep_max(sweep_id, **({"concurrency": int(best)} if integer else {"rate_per_s": best}))
    return "done"


def sweeps(store: Store):
    return store.query("SELECT * FROM sweeps ORDER BY started_at DESC")


SLOWER_SHARE = 0.95  # a level below 95% of a lower concurrency's output rate: more streams made it slower


def saturated_from(levels) -> tuple[int, int] | None:
    """(the concurrency, the lower one it fell below) where the output rate fell as concurrency rose: the host
    (client and server together) was saturated there, so the curve past it is the machine's, not the
    server's scaling; None where the rate rose or held."""
    rows = levels[levels.rate_per_s.isna()] if "rate_per_s" in levels else levels
    rows = rows.dropna(subset=["output_tok_per_s"]).sort_values("concurrency")
    best = None
    for r in rows.itertuples():
        if best is not None and r.output_tok_per_s < SLOWER_SHARE * best[1]:
            return int(r.concurrency), int(best[0])
        if best is None or r.output_tok_per_s > best[1]:
            best = (r.concurrency, r.output_tok_per_s)
    return None


def sweep_levels(store: Store, sweep_id: str):
    return store.query("SELECT * FROM sweep_levels WHERE sweep_id = ? ORDER BY concurrency", [sweep_id])
