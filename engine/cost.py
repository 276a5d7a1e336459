"""What a model costs to serve: GPU memory fit, the cheapest GPU that fits, cost per
1,000 requests and per million output tokens from measured capacity (or the
memory-bandwidth bound, labelled "estimated"), monthly cost at a traffic profile, and
the cost of the test session itself. Prices are data: engine/prices.yaml, overridden by
prices a user saved in the database."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from .catalog import CatalogModel
from .i18n import Joined, Msg
from .store import Store, utcnow

PRICES_PATH = Path(__file__).with_name("prices.yaml")
CURRENCIES = ("USD", "CNY")
OVERHEAD_GB = 1.0  # activations and CUDA context per GPU (gpu_model_facts: "about 1 GB")
# Real serving stacks reach about 60-85% of the bandwidth bound (gpu_model_facts, rule of thumb).
BANDWIDTH_EFFICIENCY = 0.7


class CostError(ValueError):
    """Bad cost input (negative price, unknown GPU or currency); the message names it."""


@dataclass(frozen=True)
class Gpu:
    id: str
    name: str
    memory_gb: float
    bandwidth_gb_per_s: float | None
    fp16_tflops: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Offer:
    gpu: str
    provider: str
    tier: str
    price_per_hour: float
    currency: str
    source: str = ""
    seen_on: str = ""
    edited: bool = False  # saved by a user in the database


@dataclass
class Traffic:
    """The production profile that monthly cost is computed for."""
    requests_per_day: float = 10_000
    peak_concurrency: int = 4  # requests in flight at the peak: the sweep level whose capacity is used
    hours_online_per_day: float = 24
    session_hours: float = 2.0  # the test session on a rented GPU (the use case: two hours)
    peak_to_mean: float = 3.0  # the busiest hour's request rate over the day's mean

    @property
    def peak_req_per_s(self) -> float:
        online_s = self.hours_online_per_day * 3600
        return self.requests_per_day / online_s * self.peak_to_mean if online_s else 0.0

    def validate(self) -> None:
        if not self.peak_to_mean >= 1:
            raise CostError(f"peak_to_mean: the peak rate over the mean, at least 1, got {self.peak_to_mean}")
        for name in ("requests_per_day", "hours_online_per_day", "session_hours"):
            if getattr(self, name) < 0:
                raise CostError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.peak_concurrency < 1:
            raise CostError(f"peak_concurrency: must be at least 1, got {self.peak_concurrency}")
        if self.hours_online_per_day > 24:
            raise CostError(f"hours_online_per_day: at most 24, got {self.hours_online_per_day}")


@dataclass
class PriceBook:
    gpus: dict[str, Gpu]
    offers: list[Offer]
    cny_per_usd: float
    rate_note: str = ""

    def gpu(self, gpu_id: str) -> Gpu:
        key = _gpu_key(gpu_id)
        for g in self.gpus.values():
            if _gpu_key(g.id) == key or _gpu_key(g.name) == key:
                return g
        raise CostError(f"unknown GPU {gpu_id!r} (known: {', '.join(self.gpus)})")

    def convert(self, amount: float, currency: str, to: str) -> float:
        if currency == to:
            return amount
        return amount * self.cny_per_usd if to == "CNY" else amount / self.cny_per_usd

    def cheapest_offer(self, gpu_id: str, currency: str = "USD") -> Offer | None:
        mine = [o for o in self.offers if o.gpu == gpu_id]
        return min(mine, key=lambda o: (self.convert(o.price_per_hour, o.currency, currency), o.provider),
                   default=None)

    def offers_table(self):
        import pandas as pd

        rows = [{"gpu": o.gpu, "memory_gb": self.gpus[o.gpu].memory_gb if o.gpu in self.gpus else None,
                 "bandwidth_gb_per_s": self.gpus[o.gpu].bandwidth_gb_per_s if o.gpu in self.gpus else None,
                 "provider": o.provider, "tier": o.tier, "price_per_hour": o.price_per_hour,
                 "currency": o.currency, "source": o.source, "seen_on": o.seen_on, "edited": o.edited}
                for o in self.offers]
        return pd.DataFrame(rows)


def _gpu_key(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", name.upper().replace("NVIDIA", "").replace("GEFORCE", ""))


@lru_cache(maxsize=1)
def _shipped() -> dict:
    return yaml.safe_load(PRICES_PATH.read_text(encoding="utf-8"))


def price_book(store: Store | None = None, cny_per_usd: float | None = None) -> PriceBook:
    """The shipped price table with the user's saved prices on top (same GPU, provider
    and tier: the saved one wins; new ones are added)."""
    data = _shipped()
    gpus = {g["id"]: Gpu(**g) for g in data["gpus"]}
    offers = {(o["gpu"], o["provider"], o["tier"]): Offer(**{**o, "seen_on": str(o.get("seen_on", ""))})
              for o in data["offers"]}
    if store is not None:
        for r in store.query("SELECT * FROM gpu_prices ORDER BY updated_at").to_dict("records"):
            if r["gpu"] not in gpus and r["memory_gb"]:
                gpus[r["gpu"]] = Gpu(r["gpu"], r["gpu"], r["memory_gb"], r["bandwidth_gb_per_s"])
            offers[(r["gpu"], r["provider"], r["tier"])] = Offer(
                r["gpu"], r["provider"], r["tier"], r["price_per_hour"], r["currency"],
                r["source"] or "edited in ModelPick", str(r["updated_at"])[:10], edited=True)
    rate = cny_per_usd if cny_per_usd is not None else data["exchange"]["cny_per_usd"]
    if rate <= 0:
        raise CostError(f"cny_per_usd: must be > 0, got {rate}")
    return PriceBook(gpus, list(offers.values()), rate, data["exchange"].get("note", ""))


def save_price(store: Store, gpu: str, provider: str, tier: str, price_per_hour: float, currency: str,
               source: str = "", memory_gb: float | None = None, bandwidth_gb_per_s: float | None = None) -> None:
    """Store a user's price (never written to the shipped file). Bad values raise CostError
    naming the field, and nothing is stored."""
    if price_per_hour is None or not math.isfinite(price_per_hour) or price_per_hour < 0:
        raise CostError(f"price_per_hour: must be a number >= 0, got {price_per_hour!r} for {gpu}")
    if currency not in CURRENCIES:
        raise CostError(f"currency: {currency!r} is not one of {', '.join(CURRENCIES)}")
    if not gpu.strip() or not provider.strip():
        raise CostError("gpu and provider: both are needed")
    book = price_book(store)
    if gpu not in book.gpus and (not memory_gb or memory_gb <= 0):
        raise CostError(f"memory_gb: a new GPU {gpu!r} needs its memory in GB (> 0)")
    store.insert_rows("gpu_prices", [{
        "gpu": gpu.strip(), "provider": provider.strip(), "tier": tier.strip() or "on-demand",
        "price_per_hour": float(price_per_hour), "currency": currency, "source": source.strip() or None,
        "memory_gb": memory_gb, "bandwidth_gb_per_s": bandwidth_gb_per_s, "updated_at": utcnow()}])


# --- memory ------------------------------------------------------------------------
@dataclass
class MemoryFit:
    weights_gb: float | None
    kv_gb: float | None
    overhead_gb: float
    context_tokens: int
    concurrency: int

    @property
    def total_gb(self) -> float | None:
        if self.weights_gb is None or self.kv_gb is None:
            return None
        return self.weights_gb + self.kv_gb + self.overhead_gb

    def describe(self) -> str:
        if self.total_gb is None:
            missing = [n for n, v in (("mem_weights", self.weights_gb), ("mem_kv", self.kv_gb)) if v is None]
            return Msg("mem_unknown", missing=Joined([Msg(n) for n in missing], " and "))
        return Msg("mem_detail", total=f"{self.total_gb:.1f}", weights=f"{self.weights_gb:.2f}",
                   kv=f"{self.kv_gb:.2f}", context=self.context_tokens, conc=self.concurrency,
                   overhead=f"{self.overhead_gb:.1f}")


def memory_fit(model: CatalogModel | None, context_tokens: int, concurrency: int = 1,
               overhead_gb: float = OVERHEAD_GB) -> MemoryFit:
    """GPU memory a model needs: weights + FP16 KV cache at this context and concurrency +
    overhead (gpu_model_facts section 5). Unknown parts stay None, never guessed."""
    if context_tokens < 1 or concurrency < 1:
        raise CostError("context_tokens and concurrency: must be at least 1")
    weights = model.weights_gb if model else None
    per_token = model.kv_bytes_per_token if model else None
    kv = per_token * context_tokens * concurrency / 1e9 if per_token else None
    return MemoryFit(weights, kv, overhead_gb, context_tokens, concurrency)


def cheapest_fit(book: PriceBook, need_gb: float | None, currency: str = "USD",
                 offer_for=None) -> tuple[Gpu, Offer] | None:
    """The cheapest GPU (by its cheapest offer, or by `offer_for(gpu)`) with at least
    `need_gb` of memory."""
    if need_gb is None:
        return None
    best = None
    for g in book.gpus.values():
        if g.memory_gb < need_gb:
            continue
        offer = offer_for(g) if offer_for else book.cheapest_offer(g.id, currency)
        if offer is None:
            continue
        price = book.convert(offer.price_per_hour, offer.currency, currency)
        if best is None or price < best[0]:
            best = (price, g, offer)
    return (best[1], best[2]) if best else None


# --- capacity and cost -------------------------------------------------------------
@dataclass
class Capacity:
    req_per_s: float | None
    output_tok_per_s: float | None
    concurrency: int
    source: str  # "sweep c=N", "sweep max rate=R", "sweep max c=N", "sequential run" or "estimated"
    note: str | None = None  # said in the cost row's notes where this capacity is used
    host_gpus: list[dict] | None = None  # the GPUs it was measured on (a sweep's host); None: the runs' host

    @property
    def estimated(self) -> bool:
        return self.source == "estimated"


def bandwidth_bound_tok_per_s(model: CatalogModel | None, gpu: Gpu) -> float | None:
    """Batch-1 decode bound: bandwidth / bytes of active weights read per token."""
    if not model or not model.weights_gb or not gpu.bandwidth_gb_per_s:
        return None
    active_share = (model.params_active_b / model.params_total_b
                    if model.params_active_b and model.params_total_b else 1.0)
    return gpu.bandwidth_gb_per_s / (model.weights_gb * active_share)


def estimated_capacity(model: CatalogModel | None, gpu: Gpu, mean_output_tokens: float | None) -> Capacity:
    bound = bandwidth_bound_tok_per_s(model, gpu)
    if bound is None or not mean_output_tokens:
        return Capacity(None, None, 1, "estimated")
    tok_s = bound * BANDWIDTH_EFFICIENCY
    return Capacity(tok_s / mean_output_tokens, tok_s, 1, "estimated")


def gpu_matches(host_gpus: list[dict], gpu: Gpu) -> bool:
    """Whether a run's host had this GPU (by name, and memory within 15%)."""
    base = _gpu_key(gpu.id.split("-")[0])
    for h in host_gpus or []:
        name_ok = base in _gpu_key(str(h.get("name", "")))
        mem = h.get("memory_total_mb")
        mem_ok = mem is None or abs(mem / 1024 - gpu.memory_gb) <= 0.15 * gpu.memory_gb
        if name_ok and mem_ok:
            return True
    return False


@dataclass
class CostRow:
    model_spec: str
    gpu: str | None
    fits: bool | None
    memory: MemoryFit | None
    offer: Offer | None
    price_per_hour: float | None
    currency: str
    capacity: Capacity | None
    cost_per_1k_requests: float | None
    cost_per_million_output_tokens: float | None
    replicas: int | None
    monthly_cost: float | None
    session_cost: float | None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "model_spec": self.model_spec, "gpu": self.gpu, "fits": self.fits,
            "memory_need_gb": self.memory.total_gb if self.memory else None,
            "memory_detail": self.memory.describe() if self.memory else "unknown",
            "provider": self.offer.provider if self.offer else None,
            "tier": self.offer.tier if self.offer else None,
            "price_source": f"{self.offer.source} ({self.offer.seen_on})" if self.offer else None,
            "price_per_hour": self.price_per_hour, "currency": self.currency,
            "capacity_req_per_s": self.capacity.req_per_s if self.capacity else None,
            "capacity_output_tok_per_s": self.capacity.output_tok_per_s if self.capacity else None,
            "capacity_concurrency": self.capacity.concurrency if self.capacity else None,
            "capacity_source": self.capacity.source if self.capacity else None,
            "cost_per_1k_requests": self.cost_per_1k_requests,
            "cost_per_million_output_tokens": self.cost_per_million_output_tokens,
            "replicas": self.replicas, "monthly_cost": self.monthly_cost, "session_cost": self.session_cost,
            "notes": Joined(self.notes),
        }


def costs(price_per_hour: float, capacity: Capacity, traffic: Traffic) -> dict:
    """Cost per 1,000 requests and per million output tokens (hourly price / capacity),
    replicas needed at the traffic profile, and monthly cost (30 days)."""
    out: dict[str, float | None] = {"cost_per_1k_requests": None, "cost_per_million_output_tokens": None,
           "replicas": None, "monthly_cost": None}
    if not capacity.req_per_s:
        return out
    out["cost_per_1k_requests"] = price_per_hour / (capacity.req_per_s * 3600) * 1000
    if capacity.output_tok_per_s:
        out["cost_per_million_output_tokens"] = price_per_hour / (capacity.output_tok_per_s * 3600) * 1e6
    # GPUs for the rate the traffic needs at its peak, against the capacity measured at that
    # concurrency (a sweep level; a sequential run's capacity, without batching, gives an upper bound)
    replicas = max(1, math.ceil(traffic.peak_req_per_s / capacity.req_per_s - 1e-9))
    out["replicas"] = replicas
    out["monthly_cost"] = replicas * price_per_hour * traffic.hours_online_per_day * 30
    return out


def cost_row(book: PriceBook, model_spec: str, model: CatalogModel | None, *, gpu_id: str | None,
             context_tokens: int, concurrency: int, currency: str, traffic: Traffic,
             measured: Capacity | None, measured_gpus: list[dict], mean_output_tokens: float | None) -> CostRow:
    """One model's cost on a named GPU, or on the cheapest GPU that fits it."""
    if currency not in CURRENCIES:
        raise CostError(f"currency: {currency!r} is not one of {', '.join(CURRENCIES)}")
    mem = memory_fit(model, context_tokens, concurrency)
    notes: list[str] = []
    if gpu_id:
        gpu = book.gpu(gpu_id)
        offer = book.cheapest_offer(gpu.id, currency)
        fits = None if mem.total_gb is None else mem.total_gb <= gpu.memory_gb
    else:
        found = cheapest_fit(book, mem.total_gb, currency)
        if found is None:
            why = mem.describe() if mem.total_gb is None else Msg("note_more_than_any", need=f"{mem.total_gb:.1f}")
            return CostRow(model_spec, None, None if mem.total_gb is None else False, mem, None, None, currency,
                           None, None, None, None, None, None, [Msg("note_no_gpu", why=why)])
        gpu, offer = found
        fits = True
    if offer is None:
        return CostRow(model_spec, gpu.id, fits, mem, None, None, currency, None, None, None, None, None, None,
                       [Msg("note_no_price", gpu=gpu.id)])
    price = book.convert(offer.price_per_hour, offer.currency, currency)
    if offer.currency != currency:
        notes.append(Msg("note_converted", currency=offer.currency, rate=book.cny_per_usd))
    if measured is not None and gpu_matches(measured.host_gpus if measured.host_gpus is not None
                                             else measured_gpus, gpu):
        capacity = measured
        if capacity.note:
            notes.append(capacity.note)
    else:
        capacity = estimated_capacity(model, gpu, mean_output_tokens)
        if capacity.req_per_s is None:
            notes.append(Msg("note_capacity_unknown"))
        else:
            notes.append(Msg("note_estimated", share=f"{BANDWIDTH_EFFICIENCY:.0%}", bw=gpu.bandwidth_gb_per_s))
    if capacity.source == "sequential run" and capacity.req_per_s:
        notes.append(Msg("note_sequential", conc=traffic.peak_concurrency))
    if fits is False:
        notes.append(Msg("note_no_fit", gpu=gpu.id, gb=gpu.memory_gb, need=f"{mem.total_gb:.1f}"))
    elif fits is None:
        notes.append(Msg("note_fit_unknown", gpu=gpu.id, how=mem.describe()))
    figures = costs(price, capacity, traffic)
    return CostRow(model_spec, gpu.id, fits, mem, offer, price, currency, capacity,
                   figures["cost_per_1k_requests"], figures["cost_per_million_output_tokens"],
                   figures["replicas"], figures["monthly_cost"], session_cost(price, traffic.session_hours), notes)


def session_cost(price_per_hour: float, hours: float = 2.0) -> float:
    """The test session itself: hourly price x hours (the use case: two hours per model)."""
    if price_per_hour < 0 or hours < 0:
        raise CostError("price and hours: must be >= 0")
    return price_per_hour * hours
