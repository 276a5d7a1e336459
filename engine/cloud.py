"""The rented-GPU session as a SkyPilot task: plan, launch, fetch.

`plan()` picks the GPU (the cheapest in the price table that fits every model of the session
together, else one cluster per model, or the GPU the user names), sizes the disk to the
weights, and writes a SkyPilot task per cluster: setup installs the serving engines the models
need and ModelPick; run starts each server, waits until it answers, runs the scenarios (and a
sweep if asked) on the box itself, so timings are not measured across the internet, and leaves
the results database in ~/modelpick-results/ for `fetch`. Autostop is always set (after the
run and after idle minutes), the session is cut at the planned hours, and a plan whose
estimated cost exceeds the budget is refused.

The session itself (`run_session`, what the task's run step calls) starts the servers from the
serve commands of the plan, or from MODELPICK_SERVE_COMMANDS (a JSON object: model spec ->
command) so the whole session can run on loopback test servers.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .backends import parse_spec
from .catalog import CatalogModel, find_served, load_presets, with_server_facts
from .cost import Gpu, Offer, PriceBook, cheapest_fit, memory_fit, price_book
from .i18n import t
from .store import Store, default_db_path

REMOTE_DB = "~/modelpick-results/results.duckdb"
IDLE_MINUTES = 10
OLLAMA_URL = "http://127.0.0.1:11434"
# SkyPilot's accelerator names for the GPUs of the price table
SKY_NAMES = {"A100-40GB": "A100", "H100-80GB": "H100"}
SESSION_CONTEXT = 32768  # context each model is served with (the runs' default --max-context)


class CloudError(ValueError):
    """A plan, launch or fetch that cannot go ahead; the message says why and what to do."""


STALE_PRICE_DAYS = 30  # a price seen longer ago than this is said to be old: check it before booking


def price_age_days(seen_on: str, today=None) -> int | None:
    """Days since a price was seen (its `seen_on`, YYYY-MM-DD); None where the date is not readable."""
    import datetime as _dt

    try:
        seen = _dt.date.fromisoformat(str(seen_on)[:10])
    except ValueError:
        return None
    return ((today or _dt.date.today()) - seen).days


@dataclass
class SessionModel:
    spec: str  # how the model is reached on the box (loopback)
    engine: str  # vllm, ollama or server (any OpenAI-compatible server the user names)
    serve: str  # the command that starts its server on the box
    url: str  # where the server answers once it is up
    model: CatalogModel | None
    need_gb: float | None

    @property
    def weights_gb(self) -> float:
        return (self.model.weights_gb if self.model and self.model.weights_gb else 16.0)


@dataclass
class Cluster:
    name: str
    gpu: Gpu
    offer: Offer | None
    models: list[SessionModel]
    disk_gb: int
    task: dict = field(default_factory=dict)

    def price_per_hour(self, book: PriceBook, currency: str) -> float | None:
        return book.convert(self.offer.price_per_hour, self.offer.currency, currency) if self.offer else None


@dataclass
class Plan:
    clusters: list[Cluster]
    scenarios: list[str]
    hours: float
    currency: str
    estimated_cost: float | None
    budget: float | None
    spot: bool
    files: list[Path] = field(default_factory=list)

    def summary(self, lang: str = "en") -> str:
        """The session in words: each cluster's GPU, price (with its source and date) and models, the
        estimated cost, and the commands to launch, fetch and tear down."""
        lines = []
        for c in self.clusters:
            offer = c.offer
            price = t("cloud_sum_price", lang, price=f"{offer.price_per_hour:g}", currency=offer.currency,
                      provider=offer.provider, tier=offer.tier, source=offer.source, seen=offer.seen_on) \
                if offer else t("cloud_sum_no_price", lang)
            age = price_age_days(offer.seen_on) if offer else None
            if age is not None and age > STALE_PRICE_DAYS:
                price += ("" if lang == "zh" else " ") + t("cloud_sum_price_old", lang, days=age)
            lines.append(t("cloud_sum_cluster", lang, name=c.name, gpu=c.gpu.id, gb=f"{c.gpu.memory_gb:g}",
                           disk=c.disk_gb, models=", ".join(m.spec for m in c.models), price=price))
        cost = t("cloud_sum_cost_unknown", lang) if self.estimated_cost is None else \
            f"{self.estimated_cost:.2f} {self.currency}"
        lines.append(t("cloud_sum_cost", lang, cost=cost, hours=f"{self.hours:g}")
                     + (t("cloud_sum_spot", lang) if self.spot else ""))
        files: list[Path | None] = list(self.files) if self.files else [None] * len(self.clusters)
        for c, path in zip(self.clusters, files):
            task = str(path) if path else "session.yaml"
            lines += [t("cloud_sum_launch", lang, task=task, name=c.name), t("cloud_sum_fetch", lang, name=c.name),
                      t("cloud_sum_down", lang, name=c.name)]
        return "\n".join(lines)


def parse_budget(text: str | None) -> tuple[float, str] | None:
    """`10USD`, `10 usd`, `70CNY`, `10` (USD) to (amount, currency)."""
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(USD|CNY|RMB)?\s*", text.upper())
    if not m:
        raise CloudError(f"--budget {text!r}: give an amount and a currency, e.g. 10USD or 70CNY")
    currency = {"RMB": "CNY", None: "USD"}.get(m.group(2), m.group(2))
    return float(m.group(1)), currency


def session_model(spec_or_preset: str, index: int, port_base: int = 8000) -> SessionModel:
    """A model of the session: a preset id, or a spec (ollama/<tag>, openai/<model>[@url])."""
    presets = load_presets()
    if spec_or_preset in presets:
        p = presets[spec_or_preset]
        spec, serve = p.spec, p.serve
    else:
        spec, serve = spec_or_preset, ""
    parsed = parse_spec(spec)
    if parsed.backend == "ollama":
        # one `ollama serve` for all Ollama models of the box; each model is pulled before the runs
        engine, url, serve = "ollama", OLLAMA_URL, f"ollama pull {parsed.model}"
        spec = f"ollama/{parsed.model}"
    elif parsed.backend == "openai":
        entry = find_served(parsed.model)
        vllm = entry.serve.get("vllm") if entry else None
        engine = "vllm" if not serve or "vllm" in serve else "server"
        port = port_base + index
        serve = serve or vllm or f"vllm serve {parsed.model}"
        if engine == "vllm":  # the vLLM of the task's setup, on its own port, in the session's context
            serve = re.sub(r"\s--(port|max-model-len)\s+\d+", "", serve)
            serve = serve.replace("vllm serve", "$HOME/vllm/bin/vllm serve", 1)
            serve += f" --max-model-len {_context(find_served(parsed.model))} --port {port}"
        url = f"http://127.0.0.1:{port}/v1" if engine == "vllm" else (parsed.host or "http://127.0.0.1:8080/v1")
        spec = f"openai/{parsed.model}@{url}"
    else:
        raise CloudError(f"{spec_or_preset}: a cloud session serves models over HTTP: give an ollama/ or openai/ "
                         f"spec or a preset ({', '.join(presets)})")
    model = find_served(parsed.model)
    if parsed.backend == "ollama" and _need_gb(model, engine) is None:  # what the catalog lacks, from Ollama
        from .backends.ollama import default_host, model_facts

        host = parsed.host or default_host()
        model = with_server_facts(model, parsed.model, model_facts(parsed.model, host), f"/api/show of {host}")
    return SessionModel(spec, engine, serve, url, model, _need_gb(model, engine))


def _context(model: CatalogModel | None) -> int:
    """The context a model is served with: the session's, or less where the model has less."""
    return min(SESSION_CONTEXT, model.context_tokens) if model and model.context_tokens else SESSION_CONTEXT


def _need_gb(model: CatalogModel | None, engine: str) -> float | None:
    """GPU memory a served model takes: Ollama loads the quantised GGUF (the catalog's
    weights) plus its KV cache; vLLM loads the original weights (BF16 unless the model ships
    quantised: the catalog's minimum GPU memory says so) plus its KV cache."""
    if model is None:
        return None
    fit = memory_fit(model, _context(model))
    if engine == "ollama":
        return fit.total_gb
    kv = fit.kv_gb or 0.0
    floor = model.min_gpu_memory_gb or (model.params_total_b * 2 + kv + fit.overhead_gb
                                        if model.params_total_b else None)
    return max(floor, fit.total_gb or 0.0) if floor else fit.total_gb


def _sky_name(gpu: Gpu) -> str:
    return SKY_NAMES.get(gpu.id, gpu.id)


def _offer(book: PriceBook, gpu: Gpu, spot: bool, currency: str) -> Offer | None:
    mine = [o for o in book.offers if o.gpu == gpu.id]
    if spot and any("spot" in o.tier.lower() for o in mine):
        mine = [o for o in mine if "spot" in o.tier.lower()]
    return min(mine, key=lambda o: book.convert(o.price_per_hour, o.currency, currency), default=None)


def _cheapest(book: PriceBook, need: float, spot: bool, currency: str) -> tuple[Gpu, Offer] | None:
    return cheapest_fit(book, need, currency, offer_for=lambda g: _offer(book, g, spot, currency))


def plan(scenarios: list[str], models: list[str], gpu: str | None = None, spot: bool = False, hours: float = 2.0,
         budget: str | None = None, sweep: str | None = None, store: Store | None = None,
         name: str = "modelpick", idle_minutes: int = IDLE_MINUTES, port_base: int = 8000) -> Plan:
    """The session as SkyPilot tasks (not yet written); CloudError for bad input or a cost over budget."""
    from .scenarios import load_scenario

    if not models:
        raise CloudError("give at least one --model or --preset")
    if not scenarios:
        raise CloudError("give at least one --scenario")
    for sid in scenarios:
        load_scenario(sid)  # an unknown scenario is named now, not on the rented box
    if not hours > 0:
        raise CloudError(f"--hours must be > 0, got {hours}")
    if idle_minutes < 1:
        raise CloudError(f"idle minutes must be at least 1, got {idle_minutes}")
    limit = parse_budget(budget)
    currency = limit[1] if limit else "USD"
    book = price_book(store)
    chosen = [session_model(m, i, port_base) for i, m in enumerate(models)]
    needs = [m.need_gb for m in chosen]
    groups: list[tuple[Gpu, Offer | None, list[SessionModel]]] = []
    if gpu:
        g = book.gpu(gpu)
        known = [n for n in needs if n is not None]
        if known and sum(known) > g.memory_gb:
            raise CloudError(f"--gpu {g.id} has {g.memory_gb:g} GB; the models need {sum(known):.1f} GB together "
                             f"({', '.join(f'{m.spec} {m.need_gb:.1f} GB' for m in chosen if m.need_gb)})")
        groups.append((g, _offer(book, g, spot, currency), chosen))
    elif any(n is None for n in needs):
        unknown = [m.spec for m in chosen if m.need_gb is None]
        raise CloudError(f"the GPU memory of {', '.join(unknown)} is not in the catalog: name the GPU with --gpu")
    else:
        together = _cheapest(book, sum(n for n in needs if n is not None), spot, currency)
        if together:
            groups.append((together[0], together[1], chosen))
        else:
            for m in chosen:  # too big together: one cluster per model
                alone = _cheapest(book, m.need_gb or 0.0, spot, currency)  # known: checked above
                if alone is None:
                    raise CloudError(f"{m.spec} needs {m.need_gb:.1f} GB: no single GPU in the price table fits it")
                groups.append((alone[0], alone[1], [m]))
    for g, _, members in groups:
        if len(members) > 1:
            for m in members:
                if m.engine == "vllm" and m.need_gb:
                    share = min(0.9, round((m.need_gb + 1) / g.memory_gb, 2))
                    m.serve = re.sub(r"\s--gpu-memory-utilization\s+[\d.]+", "", m.serve) + \
                        f" --gpu-memory-utilization {share}"
    clusters = []
    for i, (g, offer, members) in enumerate(groups):
        cname = name if len(groups) == 1 else f"{name}-{i + 1}"
        disk = max(64, int(math.ceil(sum(m.weights_gb for m in members) * 2 + 40)))
        c = Cluster(cname, g, offer, members, disk)
        c.task = _task(c, scenarios, hours, spot, sweep, idle_minutes)
        clusters.append(c)
    prices = [c.price_per_hour(book, currency) for c in clusters]
    estimated = None if any(p is None for p in prices) else sum(p for p in prices if p is not None) * hours
    result = Plan(clusters, scenarios, hours, currency, estimated, limit[0] if limit else None, spot)
    if limit and (estimated is None or estimated > limit[0]):
        why = "its cost is unknown" if estimated is None else f"it would cost about {estimated:.2f} {currency}"
        raise CloudError(f"not planned: {why}, over the budget of {limit[0]:g} {currency} "
                         f"({len(clusters)} x {clusters[0].gpu.id} for {hours:g} h); lower --hours, choose a "
                         "cheaper --gpu or raise --budget")
    return result


def _task(c: Cluster, scenarios: list[str], hours: float, spot: bool, sweep: str | None, idle_minutes: int) -> dict:
    session = {"scenarios": scenarios, "sweep": sweep,
               "servers": [{"spec": m.spec, "engine": m.engine, "serve": m.serve, "url": m.url} for m in c.models]}
    engines = {m.engine for m in c.models}
    setup = ["set -e",
             "sudo apt-get update -q && sudo apt-get install -y -q bubblewrap make python3-venv || true"]
    if "ollama" in engines:
        setup.append("command -v ollama || curl -fsSL https://ollama.com/install.sh | sh")
    if "vllm" in engines:
        setup.append("[ -x ~/vllm/bin/vllm ] || (python3 -m venv ~/vllm && ~/vllm/bin/pip install -q vllm)")
    setup.append("make install")
    run = ["set -e",
           'cd "${MODELPICK_WORKDIR:-$HOME/sky_workdir}"',
           f"mkdir -p {Path(REMOTE_DB).parent}",
           f"timeout {int(hours * 3600)} .venv/bin/python -m engine cloud session --db {REMOTE_DB}"]
    return {
        "name": c.name,
        "resources": {"accelerators": f"{_sky_name(c.gpu)}:1", "use_spot": spot, "disk_size": c.disk_gb,
                      "autostop": {"idle_minutes": idle_minutes, "down": True}},
        "workdir": ".",
        "envs": {"MODELPICK_SESSION": json.dumps(session)},
        "setup": "\n".join(setup) + "\n",
        "run": "\n".join(run) + "\n",
    }


class _Dumper(yaml.SafeDumper):
    """Scripts as literal blocks, as one would write them by hand."""


_Dumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v,
                                                            style="|" if "\n" in v else None))


def task_text(p: Plan, c: Cluster, path: str | Path | None = None) -> str:
    """A cluster's SkyPilot task file, with a header saying what it runs and how to launch it."""
    header = (f"# ModelPick session on {c.gpu.id}: {', '.join(m.spec for m in c.models)}; scenarios "
              f"{', '.join(p.scenarios)}; {p.hours:g} h.\n# Launch: python -m engine cloud launch "
              f"{path or c.name + '.yaml'}\n")
    return header + yaml.dump(c.task, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def write(p: Plan, out: str | Path) -> list[Path]:
    from .safefile import write_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out] if len(p.clusters) == 1 else [out.with_name(f"{out.stem}-{i + 1}{out.suffix}")
                                               for i in range(len(p.clusters))]
    for c, path in zip(p.clusters, paths):
        write_file(path, task_text(p, c, path).encode("utf-8"), shown=f"--out {path}")
    p.files = paths
    return paths


# --- the session on the box ----------------------------------------------------------

def _answers(url: str, engine: str) -> bool:
    import urllib.error
    import urllib.request

    probe = url.rstrip("/") + ("/api/tags" if engine == "ollama" else "/models")
    try:
        urllib.request.urlopen(probe, timeout=2).close()
        return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def run_session(db: str, session: dict | None = None, wait_s: float = 1800.0, log=print) -> list[str]:
    """Start each server, wait until it answers, run every scenario with all the models, sweep if
    asked; the run ids (each from its own run, never "the latest run"). Servers started here are
    stopped at the end."""
    from .runner import RunConfig, Runner, backend_options
    from .scenarios import load_scenario
    from .sweep import SweepConfig, parse_levels, run_sweep

    session = session or json.loads(os.environ.get("MODELPICK_SESSION") or "{}")
    if not session.get("servers"):
        raise CloudError("no session: MODELPICK_SESSION is empty (the task file sets it)")
    overrides = json.loads(os.environ.get("MODELPICK_SERVE_COMMANDS") or "{}")
    procs: list[subprocess.Popen] = []
    run_ids: list[str] = []
    try:
        for s in session["servers"]:
            if s["spec"] in overrides:  # a stand-in server (the tests' loopback servers)
                log(f"starting {s['spec']}: {overrides[s['spec']]}")
                procs.append(subprocess.Popen(overrides[s["spec"]], shell=True, start_new_session=True))
            elif s["engine"] == "ollama":
                if not _answers(s["url"], "ollama"):
                    procs.append(subprocess.Popen(["ollama", "serve"], start_new_session=True,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
                    _wait(s, wait_s, log)
                log(f"pulling {s['spec']}: {s['serve']}")
                subprocess.run(s["serve"], shell=True, check=True)
            else:
                log(f"starting {s['spec']}: {s['serve']}")
                procs.append(subprocess.Popen(s["serve"], shell=True, start_new_session=True))
        for s in session["servers"]:
            _wait(s, wait_s, log)
        specs = [s["spec"] for s in session["servers"]]
        store = Store(db)
        for sid in session["scenarios"]:
            log(f"running {sid} on {', '.join(specs)}")
            try:
                config = RunConfig(load_scenario(sid), specs, backend_options=backend_options())
                run_ids.append(Runner(store).run(config))
            except Exception as exc:  # noqa: BLE001 - said with the scenario; the servers still stop
                raise CloudError(f"the run of {sid} failed: {exc}") from exc
        if session.get("sweep"):
            failed = []
            for s in session["servers"]:
                log(f"sweeping {s['spec']} at {session['sweep']}")
                try:
                    run_sweep(store, SweepConfig(model=s["spec"], scenario=load_scenario(session["scenarios"][0]),
                                                 concurrency=parse_levels(session["sweep"])))
                except Exception as exc:  # noqa: BLE001 - the runs are kept; the sweep's failure is said
                    log(f"the load sweep of {s['spec']} failed: {exc}")
                    failed.append(s["spec"])
            if failed:  # the runs are stored already; the session still says it did not all work
                raise CloudError(f"the load sweep of {', '.join(failed)} failed (see above)")
    finally:
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, 15)
                except (ProcessLookupError, PermissionError):
                    p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    return run_ids


def _wait(server: dict, wait_s: float, log) -> None:
    deadline = time.monotonic() + wait_s
    while not _answers(server["url"], server["engine"]):
        if time.monotonic() > deadline:
            raise CloudError(f"{server['spec']}: the server did not answer at {server['url']} within {wait_s:.0f} s")
        time.sleep(1)
    log(f"{server['spec']} answers at {server['url']}")


# --- launch and fetch ----------------------------------------------------------------

def _sky_cli() -> str | None:
    """The `sky` command: beside this Python (make cloud installs it into .venv), else on PATH."""
    beside = Path(sys.executable).parent / "sky"
    return str(beside) if beside.is_file() else shutil.which("sky")


def sky_install_hint() -> str | None:
    """What to install before launching (a quick look: `sky check` itself runs at launch)."""
    if _sky_cli() is None:
        return ("Launching needs SkyPilot: run `make cloud`, configure a cloud (`sky check` says how), and "
                "reload this page. The task file above works with SkyPilot anywhere.")
    return None


def sky_status() -> str | None:
    """None when SkyPilot is installed and `sky check` finds a cloud, else what to do."""
    sky = _sky_cli()
    if sky is None:
        return ("SkyPilot is not installed: run `make cloud` (it installs requirements-cloud.txt into .venv), "
                "then configure a cloud (`sky check` says how)")
    try:
        res = subprocess.run([sky, "check"], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "`sky check` did not finish within 5 minutes"
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr)
    if res.returncode != 0 or re.search(r"no infra to check/enabled|no cloud(s)? (is |are )?enabled", text,
                                        re.IGNORECASE):
        return ("`sky check` finds no cloud or Kubernetes it can use: configure one as its hints say "
                "(run `sky check` to see them), then launch again")
    return None


def launch(task_file: str | Path, cluster: str | None = None) -> int:
    path = Path(task_file)
    if not path.is_file():
        raise CloudError(f"{path}: no such task file (make one with python -m engine cloud plan ... --out {path})")
    task = yaml.safe_load(path.read_text(encoding="utf-8"))
    why = sky_status()
    if why:
        raise CloudError(why)
    name = cluster or task.get("name") or "modelpick"
    workdir = Path(__file__).resolve().parent.parent
    return subprocess.call([_sky_cli() or "sky", "launch", "-y", "-c", name, str(path.resolve())], cwd=workdir)


def fetch(cluster: str, db: str | None = None, into: Store | None = None) -> dict[str, int]:
    """Copy the results database off the cluster and merge it into this one."""
    from .merge import merge

    if _sky_cli() is None:
        raise CloudError("SkyPilot is not installed: run `make cloud`")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", cluster):
        raise CloudError(f"{cluster!r} is not a cluster name")
    target = into or Store(db or default_db_path())
    local = Path(target.path).parent / f"{cluster}.fetched.duckdb"
    # SkyPilot writes an ssh alias per cluster, so rsync reaches it by name
    res = subprocess.run(["rsync", "-az", f"{cluster}:{REMOTE_DB}", str(local)], capture_output=True, text=True)
    if res.returncode != 0:
        raise CloudError(f"could not copy {REMOTE_DB} from {cluster}: {res.stderr.strip()[:300]} "
                         f"(is it up? `sky status {cluster}`)")
    return merge(target, local)


def cli_session(db: str) -> int:
    """`python -m engine cloud session`: what the task's run step calls on the box."""
    ids = run_session(db, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print("\n".join(ids))
    return 0


