"""Command line: `python -m engine run|list|summary`."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from . import configfile
from .backends import BackendError
from .backends.base import DEFAULT_MAX_CONTEXT
from .catalog import load_catalog, load_presets
from .redact import redact
from .runner import Progress, RunConfig, Runner, backend_options
from .scenarios import MAX_TEMPERATURE, MAX_TOKENS_LIMIT, ScenarioError, list_scenario_ids, load_scenario
from .store import Store, StoreError, default_db_path
from .summary import run_summary
from .worker import LiveWriter


def _bounded(kind, low, high):
    """An argparse type: a finite number of `kind` from `low` to `high` (argparse names the option)."""
    import math

    def shown(x) -> str:
        return str(x) if kind is int else f"{x:g}"

    def parse(text: str):
        try:
            value = float(text) if kind is float else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a {'number' if kind is float else 'whole number'}, "
                                             f"got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {shown(low)}, got {text}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {shown(high)}, got {text}")
        return value
    parse.__name__ = "number" if kind is float else "whole number"
    return parse


COUNT = _bounded(int, 1, 1_000_000)
TOKENS = _bounded(int, 1, MAX_TOKENS_LIMIT)
SECONDS = _bounded(float, 0.001, 7 * 86400)
POSITIVE = _bounded(float, 0.0, 1e12)


# options that say where and how a run is kept and shown, not what it runs: allowed beside --config
_NOT_CONFIG = {"config", "print_config", "db", "quiet", "run_id", "sweep_id", "live", "allow_internal_hosts"}


def _defaults(parser: argparse.ArgumentParser) -> dict:
    """Each option's default and its name, to tell which were given."""
    return {a.dest: (a.default, a.option_strings[0]) for a in parser._actions if a.option_strings and a.dest != "help"}


def _refuse_options_beside_config(args, what: str) -> None:
    """Options of a run or sweep given on the command line beside --config would be ignored: refused."""
    beside = [name for dest, (default, name) in args.option_defaults.items()
              if dest not in _NOT_CONFIG and getattr(args, dest, default) != default]
    if beside:
        raise ValueError(f"--config {args.config}: the file holds the {what}'s options; "
                         f"leave out {', '.join(beside)} (or drop --config)")


def _add_run(sub) -> None:
    """The run options."""
    r = sub.add_parser("run", help="run a scenario on two or more models")
    r.add_argument("--config", metavar="FILE", help="the run's configuration as a JSON file (as --print-config "
                   "writes it) instead of the options below")
    r.add_argument("--print-config", action="store_true",
                   help="print the run's configuration as JSON (for --config) and stop; nothing runs")
    r.add_argument("--scenario", help="scenario id from scenarios/ or a path to a YAML file")
    r.add_argument("--model", action="append", default=[], dest="models",
                   help="model spec backend/model, e.g. llamacpp/smollm2-135m (repeat for more)")
    r.add_argument("--preset", action="append", default=[], dest="presets",
                   help="a ready-made spec from `list presets`, e.g. gpt-oss-20b-vllm")
    r.add_argument("--repeats", type=_bounded(int, 1, 1000), default=1)
    r.add_argument("--case", action="append", dest="case_ids", help="run only these case ids")
    r.add_argument("--max-tokens", type=TOKENS)
    r.add_argument("--temperature", type=_bounded(float, 0, MAX_TEMPERATURE))
    r.add_argument("--seed", type=_bounded(int, 0, 2**32 - 1))
    r.add_argument("--gpu-layers", type=_bounded(int, -1, 100_000), default=0,
                   help="layers to offload to the GPU (-1 = all)")
    r.add_argument("--n-ctx", type=_bounded(int, 1, 1 << 24),
                   help="a fixed llama.cpp context for every model (default: each "
                   "model's own, from its GGUF file, up to --max-context)")
    r.add_argument("--max-context", type=_bounded(int, 256, 1 << 24), default=DEFAULT_MAX_CONTEXT,
                   help=f"the most context any model runs with, in tokens (default {DEFAULT_MAX_CONTEXT}); "
                        "long-context probes are sized to each model's context under this cap")
    r.add_argument("--threads", type=_bounded(int, 1, 1024), help="CPU threads for llama.cpp (default: physical cores)")
    r.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up generation")
    r.add_argument("--cache", choices=["cold", "warm"], default="cold",
                   help="cold (default): a unique marker starts every prompt, so no server's prompt cache "
                        "serves it; warm: each request is sent once untimed first, so its prefix is cached")
    r.add_argument("--allow-internal-hosts", action="store_true",
                   help="allow model URLs on link-local or cloud-metadata addresses (refused by default)")
    r.add_argument("--timeout", type=SECONDS, default=600.0,
                   help="seconds one request may take in all (default 600); also the wait for a load")
    r.add_argument("--first-token-timeout", type=SECONDS, default=120.0,
                   help="seconds to wait for a request's first token (default 120)")
    r.add_argument("--connect-timeout", type=SECONDS, default=10.0,
                   help="seconds to wait for a server to accept the connection (default 10)")
    r.add_argument("--judge", help="model spec of the judge for llm_judge checks (without one they are skipped)")
    r.add_argument("--db", default=None, help="DuckDB file (default: $MODELPICK_DB or results.duckdb)")
    r.add_argument("--quiet", action="store_true")
    r.add_argument("--run-id", help=argparse.SUPPRESS)  # chosen by the dashboard
    r.add_argument("--live", help=argparse.SUPPRESS)  # live file for the dashboard
    r.set_defaults(option_defaults=_defaults(r))


def _add_sweep(sub) -> None:
    """The load sweep's options."""
    sw = sub.add_parser("sweep", help="load sweep of an HTTP-served model at rising concurrency")
    sw.add_argument("--model", help="ollama/<tag>[@host] or openai/<model>@<base_url>")
    sw.add_argument("--config", metavar="FILE", help="the sweep's configuration as a JSON file (as --print-config "
                    "writes it) instead of the options below")
    sw.add_argument("--print-config", action="store_true",
                    help="print the sweep's configuration as JSON (for --config) and stop; nothing runs")
    sw.add_argument("--scenario", help="its cases' prompts are sent in turn")
    sw.add_argument("--concurrency", help="closed-loop levels, e.g. 1,2,4,8 (the default without --rate)")
    sw.add_argument("--rate", help="open-loop levels: Poisson arrivals per second, e.g. 0.5,1,2,4 (seeded); a "
                    "level whose queue keeps growing is marked saturated and ends early")
    sw.add_argument("--find-max", action="store_true",
                    help="search for the highest rate (from the one --rate gives, default 1/s) or, with "
                    "--concurrency, the highest concurrency that meets --slo: doubling, halving, then bisecting "
                    "over measured levels; the cost table then takes it as the model's capacity")
    sw.add_argument("--slo-share", type=_bounded(float, 0.5, 1.0), default=0.95,
                    help="a level meets the SLOs when this share of its requests does (default 0.95)")
    sw.add_argument("--max-levels", type=_bounded(int, 2, 30), default=10, help="levels a search measures at most")
    sw.add_argument("--warmup", type=_bounded(int, 0, 1000), default=0, help="untimed requests before each level")
    sw.add_argument("--seed", type=_bounded(int, 0, 2**32 - 1), default=0, help="of the arrival times")
    sw.add_argument("--clients", type=_bounded(int, 1, 64), default=None,
                    help="processes that send a level's requests together (default: one per 32 streams in "
                    "flight, at most one per CPU: one Python process cannot read many fast streams)")
    sw.add_argument("--requests", type=COUNT, help="requests per level (default 4 x concurrency, at least 8)")
    sw.add_argument("--max-tokens", type=TOKENS)
    sw.add_argument("--slo", help="for goodput, e.g. ttft_ms=500,e2e_ms=5000 (also itl_ms)")
    sw.add_argument("--level-timeout", type=SECONDS, default=120.0, help="seconds per level at most")
    sw.add_argument("--timeout", type=SECONDS, default=60.0, help="seconds a request may wait for data")
    sw.add_argument("--db", default=None)
    sw.add_argument("--cache", choices=["cold", "warm"], default="cold",
                    help="cold (default): a unique marker starts every request; warm: the prompts as they are")
    sw.add_argument("--sweep-id", help=argparse.SUPPRESS)  # chosen by the dashboard
    sw.add_argument("--live", help=argparse.SUPPRESS)  # live file for the dashboard
    sw.set_defaults(option_defaults=_defaults(sw))


def _add_cloud(sub) -> None:
    """The rented-GPU session's commands."""
    cl = sub.add_parser("cloud", help="a rented-GPU session as a SkyPilot task: plan, launch, fetch")
    cs = cl.add_subparsers(dest="cloud_command", required=True)
    cp = cs.add_parser("plan", help="write the SkyPilot task(s) and print GPU, cost and commands")
    cp.add_argument("--scenario", action="append", dest="scenarios", default=[], help="repeat it")
    cp.add_argument("--model", action="append", dest="models", default=[], help="ollama/<tag> or openai/<model>")
    cp.add_argument("--preset", action="append", dest="models", help="a preset id (list presets)")
    cp.add_argument("--gpu", help="the GPU to rent (default: the cheapest that fits every model together)")
    cp.add_argument("--spot", action="store_true", help="ask for spot instances")
    cp.add_argument("--hours", type=_bounded(float, 0.1, 720), default=2.0,
                    help="the session's length; it is cut there (default 2)")
    cp.add_argument("--budget", help="refuse a plan estimated above this, e.g. 10USD or 70CNY")
    cp.add_argument("--sweep", metavar="LEVELS", help="also a load sweep of each model, e.g. 1,2,4,8")
    cp.add_argument("--idle-minutes", type=_bounded(int, 1, 10_080), default=10,
                    help="autostop after this many idle minutes")
    cp.add_argument("--name", default="modelpick", help="the cluster name")
    cp.add_argument("--port-base", type=_bounded(int, 1024, 65000), default=8000,
                    help="vLLM servers listen on this port and up")
    cp.add_argument("--out", default="session.yaml")
    cp.add_argument("--db", default=None, help="for prices saved on the Recommend page")
    ca = cs.add_parser("launch", help="launch a planned task with SkyPilot")
    ca.add_argument("task")
    ca.add_argument("--cluster")
    cf = cs.add_parser("fetch", help="copy the results off a cluster and merge them here")
    cf.add_argument("cluster")
    cf.add_argument("--db", default=None)
    cr = cs.add_parser("session", help=argparse.SUPPRESS)  # the task's run step, on the box
    cr.add_argument("--db", required=True)


def _add_decision(sub) -> None:
    """Recommend and report: the decision's inputs."""
    for name, helptext in (("recommend", "the weighted, costed recommendation for a scenario"),
                           ("report", "the decision summary as md, html, json or pdf")):
        rc = sub.add_parser(name, help=helptext)
        rc.add_argument("--scenario", help="scenario id (its latest run of each model)")
        rc.add_argument("--run", help="one run id instead of the latest run of each model")
        rc.add_argument("--db", default=None)
        rc.add_argument("--weights", help="e.g. quality=0.5,ttft=0.2,cost=0.3 (default: the scenario's)")
        rc.add_argument("--gpu", help="GPU to cost every model on (default: the cheapest that fits each)")
        rc.add_argument("--max-vram-gb", type=POSITIVE, help="GPU memory budget per model")
        rc.add_argument("--ttft-sla-ms", type=POSITIVE, help="TTFT p95 limit")
        rc.add_argument("--e2e-sla-ms", type=POSITIVE, help="end-to-end latency p95 limit")
        rc.add_argument("--licence", action="append", dest="licences", help="allowed licence (repeat)")
        rc.add_argument("--min-quality", type=_bounded(float, 0, 1), help="minimum quality score 0-1")
        rc.add_argument("--currency", default="USD", choices=["USD", "CNY"])
        rc.add_argument("--cny-per-usd", type=_bounded(float, 0.001, 1000), help="exchange rate (default: prices.yaml)")
        rc.add_argument("--concurrency", type=_bounded(int, 1, 100_000), default=1,
                        help="concurrency the capacity is taken at")
        rc.add_argument("--context-tokens", type=_bounded(int, 1, 1 << 24),
                        help="context for the memory fit (default: the runs' n_ctx)")
        rc.add_argument("--requests-per-day", type=POSITIVE, default=10_000)
        rc.add_argument("--peak-concurrency", type=_bounded(int, 1, 100_000), default=4)
        rc.add_argument("--peak-to-mean", type=_bounded(float, 1, 1000), default=3.0,
                        help="the busiest hour's request rate over the day's mean (GPUs are sized for it)")
        rc.add_argument("--hours-online", type=_bounded(float, 0.1, 24), default=24)
        rc.add_argument("--session-hours", type=_bounded(float, 0.1, 720), default=2)
        rc.add_argument("--p-threshold", type=_bounded(float, 0.5, 1), default=0.9,
                        help="probability of ranking first needed for a verdict (default 0.9)")
        rc.add_argument("--tie-margin", type=_bounded(float, 0, 1), default=0.02,
                        help="score difference treated as a tie within a bootstrap draw (default 0.02)")
        rc.add_argument("--boot", type=_bounded(int, 100, 100_000), default=1000, help="bootstrap draws")
        rc.add_argument("--cache", choices=["cold", "warm"], default="cold",
                        help="decide on the cold runs (default) or on the warm ones (prompt cache)")
        rc.add_argument("--trust-timings", action="store_true",
                        help="weigh the timings even when a run was busy or the models ran on different machines "
                             "(by default they are left out of the verdict then; the summary says so at the top)")
        rc.add_argument("--pass-k", type=_bounded(int, 1, 1000), default=None, metavar="K",
                        help="k of the consistency criterion's pass^k, the chance that all k tries of a case succeed "
                             "(default: the repeats run)")
        rc.add_argument("--keep-judge", action="store_true",
                        help="keep the judge's scores in the verdict even where its agreement with your raters' "
                             "blind votes is no better than chance")
        if name == "recommend":
            rc.add_argument("--json", action="store_true")
            rc.add_argument("--save", metavar="NAME", help="save the decision under this name")
        else:
            rc.add_argument("--format", required=True, choices=["md", "html", "json", "pdf"])
            rc.add_argument("--out", required=True, help="file to write")
            rc.add_argument("--lang", default="en", choices=["en", "zh"])


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="ModelPick: compare LLMs on your scenarios.")
    sub = p.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_sweep(sub)
    im = sub.add_parser("import", help="turn a CSV, JSONL or Excel sheet of questions into a scenario")
    im.add_argument("file", help="a sheet (CSV, JSONL, Excel: one row per case: prompt, and optional reference, "
                    "category, lang, checks) or a promptfoo suite (promptfooconfig.yaml)")
    im.add_argument("--strict", action="store_true",
                    help="promptfoo: refuse a suite with any assertion ModelPick has no check for")
    im.add_argument("--scenario", help="the new scenario's id (default: from the file name)")
    im.add_argument("--name", help="its name (default: the file name)")
    im.add_argument("--overwrite", action="store_true", help="replace a scenario of yours with the same id")
    im.add_argument("--docs", metavar="FOLDER", help="the company's documents (PDF, Word .docx, Markdown, text): "
                    "their text becomes the cases' context (each row's context_file names one, else all)")

    _add_cloud(sub)
    mg = sub.add_parser("merge", help="merge another ModelPick results file into this one (idempotent)")
    mg.add_argument("other", help="the other results file (.duckdb); it is only read")
    mg.add_argument("--db", default=None)

    pk = sub.add_parser("pack", help="install a public case pack as a scenario (humaneval, bfcl)")
    pk.add_argument("name", choices=["humaneval", "bfcl"])
    pk.add_argument("--scenario", help="the scenario id (default: the pack's name)")
    pk.add_argument("--limit", type=COUNT, help="only the first N tasks (of each category, for bfcl)")
    pk.add_argument("--category", action="append", metavar="NAME",
                    help="bfcl: a category to take (repeatable; default simple_python, multiple, parallel, "
                         "parallel_multiple, irrelevance; also live_simple, live_multiple, live_parallel, "
                         "live_parallel_multiple, live_irrelevance, live_relevance)")
    pk.add_argument("--overwrite", action="store_true")

    j = sub.add_parser("judge", help="pairwise judging of two models' answers in a run")
    j.add_argument("--run", required=True)
    j.add_argument("--judge", required=True, help="model spec of the judge")
    j.add_argument("--models", nargs=2, required=True, metavar=("MODEL_1", "MODEL_2"))
    j.add_argument("--rubric")
    j.add_argument("--db", default=None)

    rs = sub.add_parser("resume", help="run the missing and cancelled cells of a run, in the same run")
    rs.add_argument("run_id")
    rs.add_argument("--db", default=None)
    rs.add_argument("--quiet", action="store_true")
    rs.add_argument("--live", help=argparse.SUPPRESS)

    ls = sub.add_parser("list", help="list models or scenarios")
    ls.add_argument("what", choices=["models", "scenarios", "presets"])

    _add_decision(sub)
    s = sub.add_parser("summary", help="per-model figures of a run")
    s.add_argument("--db", default=None)
    s.add_argument("--run", help="run id (default: the latest)")
    s.add_argument("--json", action="store_true")
    return p


def _check_run_args(config: RunConfig) -> None:
    """Values the run cannot honour, refused before anything runs (the limits scenario files have)."""
    from .runner import estimate_tokens

    # the range of each number is checked as it is parsed (`_bounded`, or the configuration file's
    # schema); what depends on the scenario here
    config.cases()  # an unknown case id
    n_ctx = config.backend_options.get("n_ctx")
    if n_ctx is None:
        return
    sizes = [estimate_tokens("".join(m["content"] for m in c.turn_inputs()[0][0]))
             for c in config.cases() if not c.sized_by_context]
    if sizes and n_ctx < min(sizes):
        raise ValueError(f"--n-ctx {n_ctx} is smaller than the scenario's shortest prompt "
                         f"(about {min(sizes)} tokens in {config.scenario.id})")


def _signals(cancel: threading.Event, abandon: threading.Event) -> None:
    """SIGTERM (the dashboard's Cancel), Ctrl-C and a closed terminal (SIGHUP) end the run
    cleanly as 'interrupted' within a moment; a second one stops waiting for a busy database."""
    def handler(*_):
        if cancel.is_set():
            abandon.set()
        cancel.set()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


def _progress_printer(args, live):
    def progress(p: Progress) -> None:
        if live:
            live.on_progress(p)
        if not args.quiet:
            mark = "ok" if p.ok else "FAILED"
            print(f"[{p.done}/{p.total}] {p.model_spec} {p.case_id} {mark} ({p.elapsed_s:.1f} s)",
                  file=sys.stderr, flush=True)
    return progress


def _cmd_run(args) -> int:
    from .backends import resolve
    from .backends.http import ALLOW_INTERNAL_ENV

    if args.allow_internal_hosts:
        os.environ[ALLOW_INTERNAL_ENV] = "1"

    config = _run_config(args)
    _check_run_args(config)
    if args.print_config:
        print(configfile.dumps(config.as_dict()), end="")
        return 0
    for spec in config.models + ([config.judge] if config.judge else []):
        resolve(spec, **config.backend_options)  # an unknown model or judge is bad input: nothing is created
    path = args.db or default_db_path()
    if args.run_id and Path(path).is_file() and Store(path, read_only=True).get_run(args.run_id):
        raise ValueError(f"run {args.run_id} exists already in {path}: "
                         f"continue it with `python -m engine resume {args.run_id}`")
    cancel, abandon = threading.Event(), threading.Event()
    _signals(cancel, abandon)
    live = LiveWriter(args.live, args.run_id) if args.live else None
    store = Store(path, give_up=abandon)
    _reap(store)
    runner = Runner(store, on_progress=_progress_printer(args, live), cancel=cancel, abandon=abandon,
                    on_chunk=live.on_chunk if live else None)
    run_id = runner.run(config, run_id=args.run_id)
    print(run_id, flush=True)
    return 0


def _run_config(args) -> RunConfig:
    """The run's configuration: from --config FILE, or from the options."""
    if args.config:
        _refuse_options_beside_config(args, "run")
        return RunConfig.from_file(args.config)
    presets = load_presets()
    for pid in args.presets:
        if pid not in presets:
            raise ValueError(f"unknown preset {pid!r} (known: {', '.join(presets)})")
        args.models.append(presets[pid].spec)
    if not args.scenario:
        raise ValueError("give --scenario (or --config FILE)")
    if not args.models:
        raise ValueError("give at least one --model or --preset")
    options = backend_options(args.gpu_layers, args.n_ctx, args.max_context, args.first_token_timeout,
                              args.connect_timeout, args.threads)
    return RunConfig(scenario=load_scenario(args.scenario), models=args.models, repeats=args.repeats,
                     max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed,
                     case_ids=args.case_ids, backend_options=options, warmup=not args.no_warmup,
                     cache_mode=args.cache, judge=args.judge, first_token_timeout_s=args.first_token_timeout,
                     request_timeout_s=args.timeout)


def _reap(store: Store) -> None:
    from .worker import reap_stale

    for run_id in reap_stale(store):
        print(f"note: run {run_id} had stopped without finishing; marked interrupted "
              f"(python -m engine resume {run_id} continues it)", file=sys.stderr)


def _cmd_resume(args) -> int:
    path = args.db or default_db_path()
    if not Path(path).is_file():
        raise ValueError(f"no results database at {path}")
    cancel, abandon = threading.Event(), threading.Event()
    _signals(cancel, abandon)
    store = Store(path, give_up=abandon)
    _reap(store)
    live = LiveWriter(args.live, args.run_id) if args.live else None
    runner = Runner(store, on_progress=_progress_printer(args, live), cancel=cancel, abandon=abandon,
                    on_chunk=live.on_chunk if live else None)
    print(runner.resume(args.run_id), flush=True)
    return 0


def _cmd_sweep(args) -> int:
    from .sweep import SweepConfig, check_search, parse_levels, parse_rates, parse_slo, run_sweep

    if args.config:
        _refuse_options_beside_config(args, "sweep")
        config = SweepConfig.from_file(args.config)
    elif not (args.scenario and args.model):
        raise ValueError("give --model and --scenario (or --config FILE)")
    else:
        rates = parse_rates(args.rate) if args.rate is not None else []
        levels = parse_levels(args.concurrency) if args.concurrency else []
        slo = parse_slo(args.slo)
        if args.find_max:
            check_search(slo, levels, rates)
            rates = rates or ([] if levels else [1.0])
        elif not levels and not rates:
            levels = parse_levels("1,2,4,8")
        config = SweepConfig(model=args.model, scenario=load_scenario(args.scenario), rates=rates,
                             warmup=args.warmup, seed=args.seed, concurrency=levels, requests=args.requests,
                             max_tokens=args.max_tokens, slo=slo, find_max=args.find_max,
                             slo_share=args.slo_share, max_levels=args.max_levels, clients=args.clients,
                             level_timeout_s=args.level_timeout, request_timeout_s=args.timeout,
                             cache_mode=args.cache)
    if args.print_config:
        print(configfile.dumps(config.as_dict()), end="")
        return 0

    def show(level: dict) -> None:
        def f(v):
            return "-" if v is None else f"{v:.0f}"
        where = f"c={level['concurrency']}" if level.get("rate_per_s") is None else \
            f"rate={level['rate_per_s']:g}/s (peak {level['concurrency']} in flight)" + \
            (" SATURATED" if level.get("saturated") else "")
        print(f"{where}: {level['ok_requests']}/{level['requests']} ok, "
              f"{f(level['output_tok_per_s'])} tok/s, {level['req_per_s']:.2f} req/s, "
              f"TTFT p50 {f(level['ttft_ms_p50'])} p95 {f(level['ttft_ms_p95'])} ms, "
              f"ITL p50 {f(level['itl_ms_p50'])} ms, e2e p95 {f(level['e2e_ms_p95'])} ms, "
              f"goodput {level['goodput_req_per_s']:.2f} req/s"
              + ("" if level.get("meets_slo") is None else
                 " (meets the SLOs)" if level["meets_slo"] else " (misses the SLOs)"), file=sys.stderr, flush=True)

    cancel, abandon = threading.Event(), threading.Event()
    _signals(cancel, abandon)
    live = None
    if args.live:
        live = LiveWriter(Path(args.live), args.sweep_id or "")

    def progress(level: int, done: int, total: int) -> None:
        if live:
            live.update(level=level, done=done, total=total)

    sweep_id = run_sweep(Store(args.db or default_db_path()), config, on_level=show, on_request=progress,
                         cancel=cancel, sweep_id=args.sweep_id)
    if live:
        live.update(force=True)
    if config.find_max and not cancel.is_set():
        print(_found_max(Store(args.db or default_db_path()), sweep_id, config), file=sys.stderr, flush=True)
    from .sweep import saturated_from, sweep_levels

    slower = saturated_from(sweep_levels(Store(args.db or default_db_path(), read_only=True), sweep_id))
    if slower:
        print(f"note: at c={slower[0]} the output rate fell below c={slower[1]}'s: the host was saturated, so the "
              "curve from there is this machine's limit, not the server's scaling", file=sys.stderr, flush=True)
    print(sweep_id, flush=True)
    return 130 if cancel.is_set() else 0


def _found_max(store: Store, sweep_id: str, config) -> str:
    """What a search found, in a line: the highest level that met the SLOs, or that none did."""
    row = store.query("SELECT max_rate_per_s, max_concurrency FROM sweeps WHERE sweep_id = ?", [sweep_id]).iloc[0]
    slo = ", ".join(f"{k} <= {v:g}" for k, v in config.slo.items())
    share = f"{config.slo_share:.0%} of requests"
    if row.max_rate_per_s == row.max_rate_per_s and row.max_rate_per_s is not None:
        return f"highest rate meeting the SLOs ({slo}, {share}): {row.max_rate_per_s:g} requests/s"
    if row.max_concurrency == row.max_concurrency and row.max_concurrency is not None:
        return f"highest concurrency meeting the SLOs ({slo}, {share}): {int(row.max_concurrency)}"
    return f"no level measured met the SLOs ({slo}, {share})"


def _cmd_import(args) -> int:
    from .importer import import_file

    if Path(args.file).suffix.lower() in (".yaml", ".yml"):  # a promptfoo suite
        return _import_promptfoo(args)
    def progress(i: int, n: int, name: str) -> None:
        if i == n or i % 10 == 0:
            print(f"read {i}/{n} documents ({name})", file=sys.stderr, flush=True)

    sc = import_file(args.file, args.scenario, args.name, overwrite=args.overwrite, docs_folder=args.docs,
                     on_document=progress)
    counts: dict[str, int] = {}
    for case in sc.cases:
        counts[case.category] = counts.get(case.category, 0) + 1
    print(f"saved scenario {sc.id!r} with {len(sc.cases)} cases "
          f"({', '.join(f'{k}: {v}' for k, v in counts.items())}) to {sc.source_path}")
    print(f"run it: python -m engine run --scenario {sc.id} --model ...")
    return 0


def _import_promptfoo(args) -> int:
    from .promptfoo import import_suite

    if args.docs:
        raise ValueError("--docs: a promptfoo suite brings its own variables; give documents to a sheet import")
    sc, suite = import_suite(args.file, args.scenario, args.name, overwrite=args.overwrite, strict=args.strict)
    n_checks = sum(len(c.checks) for c in sc.cases)
    print(f"saved scenario {sc.id!r} with {len(sc.cases)} cases and {n_checks} checks to {sc.source_path}")
    if suite.unmapped:
        print(f"{len(suite.unmapped)} assertion(s) without a ModelPick check (kept in the scenario's description):")
        for u in suite.unmapped:
            print(f"  {u}")
    if suite.providers:
        print("its providers as models: " + " ".join(f"--model {p}" for p in suite.providers))
    if suite.skipped_providers:
        print("providers ModelPick cannot run: " + ", ".join(suite.skipped_providers))
    print(f"run it: python -m engine run --scenario {sc.id} --model ...")
    return 0


def _cmd_cloud(args) -> int:
    from . import cloud

    if args.cloud_command == "plan":
        p = cloud.plan(args.scenarios, args.models, gpu=args.gpu, spot=args.spot, hours=args.hours,
                       budget=args.budget, sweep=args.sweep, store=Store(args.db) if args.db else None,
                       name=args.name, idle_minutes=args.idle_minutes, port_base=args.port_base)
        cloud.write(p, args.out)
        print(p.summary())
        return 0
    if args.cloud_command == "launch":
        return cloud.launch(args.task, args.cluster)
    if args.cloud_command == "fetch":
        added = cloud.fetch(args.cluster, args.db)
        print(f"fetched {args.cluster}: " + (", ".join(f"{n} {t}" for t, n in added.items() if n) or "nothing new"))
        return 0
    return cloud.cli_session(args.db)


def _cmd_merge(args) -> int:
    from .merge import merge

    added = merge(Store(args.db or default_db_path()), args.other)
    shown = ", ".join(f"{n} {t}" for t, n in added.items() if n) or "nothing new"
    print(f"merged {args.other}: {shown}")
    return 0


def _cmd_pack(args) -> int:
    from .packs import install_pack

    sc, skipped = install_pack(args.name, args.scenario, args.limit, overwrite=args.overwrite,
                               categories=args.category)
    print(f"saved scenario {sc.id!r} with {len(sc.cases)} cases to {sc.source_path}")
    if skipped:
        print(f"left out {len(skipped)} entries: " + "; ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""),
              file=sys.stderr)
    print(f"run it: python -m engine run --scenario {sc.id} --model ...")
    return 0


def _cmd_judge(args) -> int:
    from .judging import pairwise

    first, second = args.models
    rows = pairwise(Store(args.db or default_db_path()), args.run, args.judge, first, second, rubric=args.rubric)
    scores = [s for s in rows.score_1 if s == s and s is not None]
    share = sum(scores) / len(scores) if scores else float("nan")
    print(f"{args.models[0]} preferred in {share:.0%} of {len(rows)} comparisons over {args.models[1]} "
          f"(both orders averaged)")
    return 0


def _cmd_list(args) -> int:
    if args.what == "presets":
        for p in load_presets().values():
            print(f"{p.id}\t{p.spec}\t{p.label}\n\tserve: {p.serve}")
        return 0
    if args.what == "scenarios":
        broken = 0
        for sid in list_scenario_ids():
            try:
                sc = load_scenario(sid)
            except ScenarioError as exc:  # one bad file does not hide the others
                print(f"error: {exc}", file=sys.stderr)
                broken += 1
                continue
            print(f"{sid}\t{len(sc.cases)} cases\t{sc.name}")
        return 2 if broken else 0
    else:
        for m in load_catalog().values():
            how = "bundled: llamacpp/" + m.id if m.bundled else ", ".join(
                f"{k}: {v}" for k, v in m.serve.items() if k != "vllm")
            print(f"{m.id}\t{m.name}\t{m.license}\t{how}")
    return 0


def _cmd_summary(args) -> int:
    summary = run_summary(Store(args.db or default_db_path(), read_only=True), args.run)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
        return 0
    print(f"run {summary['run_id']}  scenario {summary['scenario_id']}  {summary['status']}")
    for m in summary["models"]:
        def f(v, fmt="{:.0f}"):
            return "-" if v is None else fmt.format(v)
        print(f"{m['model_spec']}: TTFT p50 {f(m['ttft_ms_p50'])} ms p95 {f(m['ttft_ms_p95'])} ms, "
              f"latency p50 {f(m['e2e_ms_p50'])} ms p95 {f(m['e2e_ms_p95'])} ms, "
              f"decode {f(m['decode_tok_per_s_p50'], '{:.1f}')} tok/s, "
              f"quality {f(m['quality']['score'], '{:.2f}')} "
              f"({f(m['quality']['ci_low'], '{:.2f}')}-{f(m['quality']['ci_high'], '{:.2f}')})")
    return 0


def _decision(args):
    from .cost import Traffic
    from .recommend import Constraints, CostInputs, RecommendError, parse_weights, recommend

    if not (args.scenario or args.run):
        raise RecommendError("give --scenario ID (or --run ID)")
    if args.boot < 100:
        raise RecommendError("--boot: at least 100 draws")
    if args.concurrency < 1:
        raise RecommendError("--concurrency: at least 1")
    if args.context_tokens is not None and args.context_tokens < 1:
        raise RecommendError("--context-tokens: at least 1")
    path = args.db or default_db_path()
    if not Path(path).is_file():
        raise RecommendError(f"no results database at {path}: run a scenario first")
    store = Store(path, read_only=True)
    constraints = Constraints(max_vram_gb=args.max_vram_gb, ttft_p95_ms=args.ttft_sla_ms,
                              e2e_p95_ms=args.e2e_sla_ms, licences=args.licences, min_quality=args.min_quality)
    traffic = Traffic(args.requests_per_day, args.peak_concurrency, args.hours_online, args.session_hours,
                      args.peak_to_mean)
    cost = CostInputs(gpu=args.gpu, currency=args.currency, concurrency=args.concurrency,
                      context_tokens=args.context_tokens, cny_per_usd=args.cny_per_usd, traffic=traffic)
    return recommend(store, args.scenario, run_id=args.run, weights=parse_weights(args.weights),
                     constraints=constraints, cost_inputs=cost, p_threshold=args.p_threshold,
                     tie_margin=args.tie_margin, n_boot=args.boot, cache_mode=args.cache,
                     trust_timings=args.trust_timings, keep_judge=args.keep_judge, pass_k=args.pass_k)


def _cmd_recommend(args) -> int:
    import pandas as pd

    from .recommend import save_decision

    d = _decision(args)
    if args.save:
        print(f"saved as {save_decision(Store(args.db or default_db_path()), d, args.save)}", file=sys.stderr)
    if args.json:
        print(json.dumps(d.as_dict(), ensure_ascii=False, indent=2, default=str))
        return 0
    parts = [c for c in d.ranking.columns if c.startswith("part_")]
    print(f"scenario {d.scenario_id}: {d.n_cases} cases, weights "
          + ", ".join(f"{c}={w:.0%}" for c, w in d.weights.items()))
    for r in d.ranking.itertuples():
        contrib = ", ".join(f"{p.removeprefix('part_')} {getattr(r, p):.3f}" for p in parts)
        state = f"P(first) {r.p_first:.2f}" if r.eligible else f"excluded: {r.reasons}"
        print(f"  {r.model_spec}: score {r.score:.3f}  {state}  [{contrib}]")
    for c, why in d.dropped_criteria.items():
        print(f"  not weighed: {c} ({why})")
    for w in d.warnings:
        print(f"  warning: {w}")
    for row in d.sensitivity.itertuples():
        sides = [f"below {row.flip_low:.0%} -> {row.winner_below}" if pd.notna(row.flip_low) else "",
                 f"above {row.flip_high:.0%} -> {row.winner_above}" if pd.notna(row.flip_high) else ""]
        flips = "; ".join(f for f in sides if f) or "no weight changes the leader"
        print(f"  weight {row.criterion} {row.weight:.0%}: {flips}")
    for b in d.binding:
        print(f"  constraint {b['constraint']} excludes {', '.join(b['excludes'])}"
              + (" (binds)" if b["binds"] else ""))
    if d.more_cases.get("note"):
        print(f"  {d.more_cases['note']}")
    print(f"verdict: {d.verdict}")
    return 0


def _cmd_report(args) -> int:
    from .report import render, reproducibility_json, to_markdown

    d = _decision(args)
    out = Path(args.out)
    files = {out: render(d, args.format, args.lang)}
    if args.format == "md":  # the full reproducibility record goes beside it, named in it
        sidecar = out.with_name(f"{out.stem}.reproducibility.json")
        files = {out: to_markdown(d, args.lang, sidecar=sidecar.name).encode("utf-8"),
                 sidecar: reproducibility_json(d).encode("utf-8")}
    from .safefile import write_file

    for path, data in files.items():
        write_file(path, data, shown=f"--out {path}")
    print(f"{', '.join(map(str, files))}: {d.verdict}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        commands = {"run": _cmd_run, "sweep": _cmd_sweep, "judge": _cmd_judge, "list": _cmd_list,
                    "summary": _cmd_summary, "recommend": _cmd_recommend, "report": _cmd_report,
                    "resume": _cmd_resume, "import": _cmd_import, "pack": _cmd_pack,
                    "merge": _cmd_merge, "cloud": _cmd_cloud}
        return commands[args.command](args)
    except (ScenarioError, BackendError, StoreError, LookupError, ValueError) as exc:  # bad input
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
