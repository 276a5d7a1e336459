"""The decision summary a CTO takes into the meeting, from one `recommend()` result:
Markdown, one self-contained printable HTML file (charts embedded as SVG), JSON and PDF.
Everything a model wrote is escaped; the same database and weights give the same
report apart from its timestamp."""
from __future__ import annotations

import html
import json
import math
import numbers
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from .i18n import TEXT, Msg, label, say, t
from .recommend import NO_ELIGIBLE, TOO_CLOSE, Decision, table_wide
from .scenarios import ScenarioError, load_scenario
from .textsafe import fence, markdown_text

FORMATS = ("md", "html", "json", "pdf")
_EXAMPLES = 3  # cases where the models' answers differ most in quality


class ReportError(ValueError):
    pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def verdict_text(d: Decision, lang: str, name=str, for_board: bool = False) -> str:
    """The verdict in a sentence, and beside it whether the timings took part (left out for a busy or
    mixed host, or weighed at the user's request); `name` formats the winner (a code span on the dashboard).
    `for_board`: the memo's page one, which says what to do without naming the software's controls."""
    if d.verdict == TOO_CLOSE:
        text = t("rec_too_close", lang)
        if not d.ranking.empty:  # the model ahead is named with how often it ranked first, below the bar
            top = d.ranking.iloc[0]
            text += ("" if lang == "zh" else " ") + t("rec_too_close_leader", lang, model=name(top.model_spec),
                                                      p=f"{top.p_first:.0%}", need=f"{d.p_threshold:.0%}")
    elif d.verdict == NO_ELIGIBLE:
        text = t("rec_no_eligible", lang)
    else:
        top = d.ranking.iloc[0]
        text = t("rec_verdict_winner", lang, model=name(d.verdict), p=f"{top.p_first:.0%}",
                 margin=f"{d.margin:.3f}" if d.margin is not None else "–")
    note = (d.timings or {}).get("note")
    if for_board and isinstance(note, Msg) and note.key == "timing_left_out":
        note = Msg("timing_left_out_board", **note.params)
    return f"{text}{'' if lang == 'zh' else ' '}{say(note, lang)}" if note else text


def _num(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if isinstance(v, numbers.Real):
        v = float(v)
        if v and abs(v) < 10 ** -digits * 10:  # a small figure keeps two significant digits: 0.00070, not 0.00
            digits = max(digits, math.ceil(-math.log10(abs(v))) + 1)
        return f"{v:,.{digits}f}"
    return str(v)


def examples(d: Decision, limit: int = _EXAMPLES) -> list[dict]:
    """The cases where the top two models' quality differs most, with both answers."""
    ev = d.evidence
    if len(d.ranking) < 2 or ev is None:
        return []
    a, b = d.ranking.model_spec.iloc[0], d.ranking.model_spec.iloc[1]
    qa, qb = ev.per_case["quality"][ev.index(a)], ev.per_case["quality"][ev.index(b)]
    diffs = sorted(((abs(x - y), case, x, y) for case, x, y in zip(ev.cases, qa, qb) if x == x and y == y),
                   key=lambda r: (-r[0], r[1]))
    out = []
    for diff, case, x, y in diffs[:limit]:
        if diff <= 0:
            break
        rows = ev.gens[(ev.gens.case_id == case) & (ev.gens.repeat == 0)].sort_values("turn")
        answers = {m: "\n---\n".join(str(t or "") for t in rows[rows.model_spec == m].output_text)[:1500]
                   for m in (a, b)}
        out.append({"case_id": case, "difference": float(diff), "answers": answers,
                    "scores": {a: float(x), b: float(y)}})
    return out


def build(d: Decision, lang: str = "en", generated_at: str | None = None) -> dict:
    """The report's content as data (also the JSON export)."""
    if lang not in ("en", "zh"):
        raise ReportError(f"lang: {lang!r} is not en or zh")
    body = d.as_dict()
    body["examples"] = examples(d)
    body["verdict_text"] = verdict_text(d, lang, for_board=True)
    body["generated_at"] = generated_at or _now()
    body["lang"] = lang
    body["scenario"] = scenario_facts(d, lang)
    return body


def scenario_facts(d: Decision, lang: str) -> dict:
    """What was measured, to stand next to the verdict: the scenario's name and description,
    its cases, the repeats of each, the models."""
    runs = d.reproducibility.get("generation_parameters") or {}
    repeats = sorted({int(p.get("repeats") or 1) for p in runs.values()}) or [1]
    facts = {"id": d.scenario_id, "name": d.scenario_id, "description": "", "cases": d.n_cases,
             "repeats": repeats[0] if len(repeats) == 1 else f"{repeats[0]}-{repeats[-1]}",
             "models": list(d.models), "prompts": {}}
    try:
        sc = load_scenario(d.scenario_id)
    except ScenarioError:  # a scenario deleted since its run: the run's figures still stand
        return facts
    facts["name"] = (sc.name_zh if lang == "zh" and sc.name_zh else sc.name) or d.scenario_id
    facts["description"] = ((sc.description_zh if lang == "zh" and sc.description_zh else sc.description)
                            or "").strip()
    facts["prompts"] = {c.id: _user_turns(c) for c in sc.cases}
    return facts


def _user_turns(case) -> list[str]:
    """What the user said in a case, turn by turn (the scenario's instructions and documents left out)."""
    if case.turns:
        return [turn.user for turn in case.turns]
    if case.messages:
        return [m["content"] for m in case.messages if m.get("role") == "user"]
    return [case.prompt or ""]


# --- the lead page: verdict, why, cost, risks, what would change it ----------------------
_UNITS = {"score 0-1": "unit_score", "ms": "unit_ms", "tok/s": "unit_tok_s", "s": "unit_s", "MB": "unit_mb",
          "per 1,000 requests": "unit_per_1k", "tokens": "unit_tokens", "ways to serve": "unit_ways",
          "share of votes won": "unit_votes"}


def _value(v, unit: str, L) -> str:
    if v is None or v != v:
        return "–"
    digits = 0 if unit in ("ms", "tokens", "MB") else 3 if unit in ("score 0-1", "share of votes won") else 2
    text = _num(float(v), digits)
    return f"{text} {L(_UNITS[unit])}" if unit in _UNITS else f"{text} {unit}"


def why_lines(d: Decision, L) -> list[str]:
    """The criteria that put the leader ahead of the next model, largest first, with both figures."""
    if len(d.ranking) < 2 or d.criteria.empty:
        return []
    lead, other = d.ranking.model_spec.iloc[0], d.ranking.model_spec.iloc[1]
    crit = d.criteria[d.criteria.criterion.isin(list(d.weights))].set_index(["criterion", "model_spec"])
    rows = []
    for c, w in d.weights.items():
        a, b = crit.loc[(c, lead)], crit.loc[(c, other)]
        gap = (a.contribution or 0.0) - (b.contribution or 0.0)
        rows.append((gap, c, w, a, b))
    rows.sort(key=lambda r: -abs(r[0]))
    out = []
    for gap, c, w, a, b in rows[:3]:
        key = "rep_why_ahead" if gap > 1e-9 else "rep_why_behind" if gap < -1e-9 else "rep_why_even"
        out.append(L(key, criterion=L(f"crit_{c}"), weight=f"{w:.0%}", lead=lead, other=other,
                     a=_value(a.value, a.unit, L), b=_value(b.value, b.unit, L)))
    return out


def change_lines(d: Decision, L) -> list[str]:
    """The nearest weight changes that hand the lead to another model, then what more cases would do."""
    out = []
    if not d.sensitivity.empty:
        sens = d.sensitivity.dropna(subset=["distance"]).sort_values("distance")
        for r in sens.head(3).itertuples():
            crit = L(f"crit_{r.criterion}")
            for edge, model, key in ((r.flip_high, r.winner_above, "rep_change_above"),
                                     (r.flip_low, r.winner_below, "rep_change_below")):
                if edge is not None and edge == edge and abs(edge - r.weight) == r.distance:
                    out.append(L(key, criterion=crit, share=f"{edge:.0%}", now=f"{r.weight:.0%}", model=model))
                    break
    if not out:
        out.append(L("rec_no_flip"))
    out += [L("rep_change_constraint", c=L(f"constraint_{b['constraint']}"), m=b["unconstrained_leader"])
            for b in d.binding if b["binds"]]
    if d.more_cases.get("note"):
        out.append(say(d.more_cases["note"], L.lang))
    return out


def risk_lines(d: Decision, L) -> list[str]:
    """What bears on the verdict, on page one: each weighted criterion that did not decide and why, then the
    warnings."""
    dropped = [L("rep_not_weighed", criterion=L(f"crit_{c}"), why=say(why, L.lang))
               for c, why in d.dropped_criteria.items()]
    return dropped + [say(w, L.lang) for w in d.warnings] or [L("rep_no_risks")]


def _lead_cost(r: dict, L) -> tuple[list[dict], list[str], list[str]]:
    cur = r["cost_inputs"].get("currency") or ""
    return (r["cost"], ["model_spec", "gpu", "cost_per_1k_requests", "replicas", "monthly_cost", "session_cost"],
            [L("model"), "GPU", f"{L('rec_cost_1k')} ({cur})", L("rec_replicas"), f"{L('rec_monthly')} ({cur})",
             f"{L('rec_session')} ({cur})"])


# --- reproducibility: a short table, the full record attached --------------------------
def repro_rows(d: Decision, L) -> list[dict]:
    rp = d.reproducibility
    params = rp.get("generation_parameters") or {}
    rows = []
    for run in rp.get("runs", []):
        p = params.get(run["run_id"], {})
        sched = p.get("schedule") or {}
        started = str(run.get("started_at") or "–")[:19]
        rows += [{"item": L("rep_r_run"), "value": f"{run['run_id']} · {started} · "
                                                  f"{run.get('status') or '–'}"},
                 {"item": L("rep_r_params"), "value": L(
                     "rep_r_params_value", repeats=p.get("repeats") or 1, max_tokens=p.get("max_tokens") or "–",
                     temperature=p.get("temperature") if p.get("temperature") is not None else "–",
                     seed=p.get("seed") if p.get("seed") is not None else "–")},
                 {"item": L("rep_r_order"), "value": L("rep_r_order_value", mode=sched.get("mode") or "–",
                                                       n=len(sched.get("order") or []))}]
    for h in rp.get("hardware", []):
        gpus = ", ".join(str(g.get("name", g)) if isinstance(g, dict) else str(g) for g in h.get("gpus") or []) or "–"
        ram_gb = _num((h.get("ram_total_mb") or 0) / 1024, 0)
        rows.append({"item": L("rep_r_host"), "value": f"{h.get('cpu_model') or '–'} · "
                     f"{h.get('cpu_cores_physical') or '–'} {L('rep_r_cores')} · {ram_gb} GB · GPU: {gpus}"})
    for libs in (rp.get("libraries") or {}).values():
        if libs:
            rows.append({"item": L("rep_r_libraries"),
                         "value": ", ".join(f"{k} {v}" for k, v in sorted(libs.items()) if v)})
    for m, ident in (rp.get("models") or {}).items():
        bits = [Path(str(v)).name if k == "file" else str(v)[:16] if k in ("sha256", "digest") else str(v)
                for k, v in (ident or {}).items() if k in ("file", "sha256", "digest", "quant", "revision") and v]
        rows.append({"item": L("rep_r_model"), "value": f"{m}" + (f" · {' · '.join(bits)}" if bits else "")})
    return rows


def sidecar_name(scenario_id: str) -> str:
    return f"modelpick-{scenario_id}.reproducibility.json"


def reproducibility_json(d: Decision) -> str:
    return json.dumps(d.reproducibility, ensure_ascii=False, indent=2, default=str)


# --- shared tables -----------------------------------------------------------------------
def _tables(d: Decision, r: dict, L: _Lang) -> dict[str, tuple[list[dict], list[str], list[str]]]:
    """The report's tables, as (rows, columns, headers), shared by every format; every header and
    every word in a cell that is ours goes through the language table."""
    pct = lambda v: "–" if v is None or v != v else f"{v:.0%}"  # noqa: E731
    cur = r["cost_inputs"].get("currency") or ""
    out = {
        # an excluded model's score is normalised against the eligible ones, so it is not comparable: not shown
        "ranking": ([{**row, "score": row["score"] if row.get("eligible", True) else None,
                      "p_first": pct(row["p_first"]), "reasons": say(row["reasons"], L.lang) or "–"}
                     for row in r["ranking"]],
                    ["model_spec", "score", "p_first", "reasons"],
                    [L("model"), L("rec_score"), L("rec_p_first"), L("rec_excluded_why")]),
        "weights": ([{"c": L(f"crit_{c}"), "w": f"{w:.0%}"} for c, w in r["weights"].items()], ["c", "w"],
                    [L("rec_criterion"), L("rec_weight")]),
        "categories": ([{**row, "category": label(row["category"], L.lang),
                         "n": None if _blank(row.get("n")) == "–" else int(row["n"]),
                         "winner": L("tie") if row.get("winner") == "tie" else say(_blank(row.get("winner")), L.lang)}
                        for row in r["categories"]],
                       ["category", "model_spec", "score", "ci_low", "ci_high", "n", "winner"],
                       [L("category"), L("model"), L("rec_score"), L("ci_low"), L("ci_high"), L("rep_n_cases"),
                        L("winner")]),
        "sensitivity": ([{**row, "criterion": L(f"crit_{row['criterion']}"), "weight": pct(row["weight"]),
                          "flip_low": pct(row["flip_low"]), "flip_high": pct(row["flip_high"]),
                          "winner_below": _blank(row["winner_below"]), "winner_above": _blank(row["winner_above"])}
                         for row in r["sensitivity"]],
                        ["criterion", "weight", "flip_low", "winner_below", "flip_high", "winner_above"],
                        [L("rec_criterion"), L("rec_weight"), L("rec_flip_low"), L("rec_winner_below"),
                         L("rec_flip_high"), L("rec_winner_above")]),
        "cold_warm": (r["cold_warm"], ["model_spec", "ttft_ms_cold", "ttft_ms_warm", "warm_over_cold"],
                      [L("model"), L("ttft_ms_cold"), L("ttft_ms_warm"), L("warm_over_cold")]),
        "cost": ([{**row, "notes": say(row["notes"], L.lang), "capacity_source": capacity_source(row, L)}
                  for row in r["cost"]],
                 ["model_spec", "gpu", "cost_per_1k_requests", "replicas", "monthly_cost", "session_cost",
                  "price_per_hour", "memory_need_gb", "capacity_source", "cost_per_million_output_tokens", "notes"],
                 [L("model"), "GPU", f"{L('rec_cost_1k')} ({cur})", L("rec_replicas"), f"{L('rec_monthly')} ({cur})",
                  f"{L('rec_session')} ({cur})", f"{L('rec_price')} ({cur})", L("rec_memory_need"),
                  L("rec_capacity_source"), f"{L('rec_cost_mtok')} ({cur})", L("rec_notes")]),
        "lead_cost": _lead_cost(r, L),
        "repro": (repro_rows(d, L), ["item", "value"], [L("rep_r_item"), L("rep_r_value")]),
    }
    wide = table_wide(d.table)
    if not wide.empty:
        cols = [c for c in wide.columns if c not in ("row", "winner")]
        rows = [{**rec, "row": label(rec["row"], L.lang),
                 "winner": L("tie") if rec["winner"] == "tie" else say(_blank(rec["winner"]), L.lang)}
                for rec in wide.to_dict("records")]
        out["decision"] = (rows, ["row", *cols, "winner"], [L("row"), *cols, L("winner")])
    return out


def _blank(v):
    """A cell with nothing in it (None, NaN, "") as "–"."""
    return "–" if v is None or v == "" or (isinstance(v, float) and v != v) else v


def capacity_source(row: dict, L) -> str:
    """Where a cost row's capacity comes from, in words: "sweep c=4", "sweep max rate=2.5", "sweep max
    c=8", "sequential run", "estimated"."""
    src = str(row.get("capacity_source") or "")
    kind, sep, level = src.partition("=")
    kind, _, name = kind.rpartition(" ") if sep else (src, "", "")
    key = f"capsrc_{kind.replace(' ', '_')}"
    if not src or key not in TEXT:
        return src or "–"
    return L(key) + (f" ({name}={level}{'/s' if name == 'rate' else ''})" if sep else "")


def tables(d: Decision, lang: str = "en", body: dict | None = None) -> dict[str, tuple[list[dict], list[str],
                                                                                   list[str]]]:
    """The summary's tables, for a page that shows them as the summary has them (`body`: the content
    `build()` gave already)."""
    return _tables(d, body if body is not None else build(d, lang, generated_at="-"), _Lang(lang))


def votes_line(r: dict, L) -> str:
    hv = r["human_votes"]
    if not hv["votes"]:
        return L("rep_votes_none")
    line = L("rep_votes", n=hv["votes"], cases=hv["cases"], raters=", ".join(hv["raters"]) or "–")
    if not (r.get("weights") or {}).get("preference"):  # the votes are there, but did not count
        line += " " + L("rep_votes_not_weighted")
    return line


def stars_lines(r: dict, L) -> list[str]:
    """The raters' stars per model and dimension (the latest of each rater), said not to count where
    preference has no weight (stars never enter the score; the blind votes do, through preference)."""
    from .ratings import stars_text

    weighted = bool((r.get("weights") or {}).get("preference"))
    out = [L("rep_stars", model=s["model_spec"], dimension=L(s["dimension"]),
             stars=stars_text(s["stars_mean"], s.get("ci_low"), s.get("ci_high")), cases=s["cases"],
             raters=s["raters"]) for s in r.get("stars") or []]
    if out and not weighted:
        out.append(L("rep_stars_not_weighted"))
    return out


def hardware_lines(hardware: list[dict], L, lang: str | None = None) -> list[str]:
    """"this model reaches 62% of what this machine allows", per model, with the figures."""
    lang = lang or str(getattr(L, "lang", "en"))
    return [L("rep_bound_line", model=h["model_spec"], pct=f"{h['bound_share']:.0%}",
              measured=f"{h['decode_tok_per_s']:.0f}", bound=f"{h['bound_tok_per_s']:.0f}",
              bw=f"{h['bandwidth_gb_per_s']:g}", source=say(h["bandwidth_source"], lang)) for h in hardware]


def _constraint_lines(r: dict, L) -> list[str]:
    lines = [f"{L('constraint_' + k)}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
             for k, v in r["constraints"].items()]
    lines += [f"{L('constraint_' + b['constraint'])}: {L('rep_excludes')} {', '.join(b['excludes'])}"
              + (f" ({L('rep_binds')})" if b["binds"] else "") for b in r["binding_constraints"]]
    return lines


class _Lang:
    """`L(key, **params)`: a label in the report's language; `L.lang` the language."""

    def __init__(self, lang: str):
        self.lang = lang

    def __call__(self, key: str, **kw) -> str:
        return t(key, self.lang, **kw)


def _scenario_line(r: dict, L) -> str:
    sc = r["scenario"]
    return L("rep_scenario_line", name=sc["name"], cases=sc["cases"], repeats=sc["repeats"],
             models=len(sc["models"]))


# --- Markdown ----------------------------------------------------------------------
def _md_escape(text: str) -> str:
    """Text that is not ours (ids, specs, notes with server errors in them) as literal Markdown."""
    return markdown_text(text)


def _md_table(rows: list[dict], columns: list[str], headers: list[str]) -> str:
    def cell(v):
        return _md_escape(_num(v) if not isinstance(v, str) else v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def to_markdown(d: Decision, lang: str = "en", generated_at: str | None = None, sidecar: str | None = None) -> str:
    """The summary in Markdown; its full reproducibility record is the JSON file `sidecar` beside it
    (`markdown_bundle` gives both)."""
    r = build(d, lang, generated_at)
    L = _Lang(lang)
    tables = {k: _md_table(*v) for k, v in _tables(d, r, L).items()}
    bullets = lambda lines: [f"- {_md_escape(x)}" for x in lines] + [""]  # noqa: E731
    sc = r["scenario"]
    parts = [f"# {_md_escape(L('rep_title', scenario=sc['name']))}", "",
             f"_{L('rep_generated', when=r['generated_at'])}_", "",
             _md_escape(_scenario_line(r, L)), ""]
    if sc["description"]:
        parts += [_md_escape(sc["description"]), ""]
    parts += [f"## {L('rep_verdict')}", "", f"**{_md_escape(r['verdict_text'])}**", "",
              _md_escape(votes_line(r, L)), "", *[_md_escape(x) + "  " for x in stars_lines(r, L)], "",
              f"### {L('rep_why')}", "", *bullets(why_lines(d, L) or [L("rep_why_single")]),
              f"### {L('rep_cost_lead')}", "", tables["lead_cost"], "",
              f"### {L('rep_risks')}", "", *bullets(risk_lines(d, L)),
              f"### {L('rep_changes')}", "", *bullets(change_lines(d, L)),
              "---", "", f"# {L('rep_evidence')}", "",
              f"## {L('rec_ranking')}", "", tables["ranking"], "",
              f"## {L('rep_weights')}", "", tables["weights"], "",
              f"{L('rep_normalisation')}: {L('rec_normalisation_text')}.", ""]
    if r["constraints"] or r["binding_constraints"]:
        parts += [f"## {L('rep_constraints')}", "", *bullets(_constraint_lines(r, L))]
    if "decision" in tables:
        parts += [f"## {L('rep_decision_table')}", "", tables["decision"], ""]
    if r["categories"]:
        parts += [f"## {L('rep_categories')}", "", tables["categories"], ""]
    parts += [f"## {L('rep_sensitivity')}", "", tables["sensitivity"], "",
              f"## {L('rep_cost')}", "", tables["cost"], ""]
    if r["examples"]:
        parts += [f"## {L('rep_examples')}", ""]
        for ex in r["examples"]:
            parts += [f"### {_md_escape(ex['case_id'])}", ""]
            asked = sc["prompts"].get(ex["case_id"])
            if asked:
                parts += [f"**{L('rep_prompt')}**:", "", fence("\n---\n".join(asked)), ""]
            for m, text in ex["answers"].items():
                parts += [f"**{_md_escape(m)}** ({L('rec_score')} {_num(ex['scores'][m])}):", "",
                          fence(text), ""]
    if r["cold_warm"]:
        used = L("rep_cache_used", mode=L("cache_" + r["cache_mode"]))
        parts += [f"## {L('cmp_cold_warm')}", "", used, "", tables["cold_warm"], ""]
    if r["hardware"]:
        parts += [f"## {L('rep_bound')}", "", *bullets(hardware_lines(r["hardware"], L))]
    parts += [f"## {L('rep_caveats')}", "", *bullets([say(c, lang) for c in d.caveats] or ["–"])]
    parts += [f"## {L('rep_repro')}", "", tables["repro"], "",
              _md_escape(L("rep_repro_full", where=L("rep_attached_md", name=sidecar or sidecar_name(d.scenario_id)))),
              ""]
    return "\n".join(parts)


def markdown_bundle(d: Decision, lang: str = "en", generated_at: str | None = None) -> bytes:
    """The Markdown download: a zip with the summary and, beside it, its full reproducibility record."""
    import io
    import zipfile

    name = sidecar_name(d.scenario_id)
    buf = io.BytesIO()
    stamp = (1980, 1, 1, 0, 0, 0)  # the same decision gives the same bytes
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(f"modelpick-{d.scenario_id}.md", stamp),
                   to_markdown(d, lang, generated_at, sidecar=name))
        z.writestr(zipfile.ZipInfo(name, stamp), reproducibility_json(d))
    return buf.getvalue()


# --- HTML --------------------------------------------------------------------------
def _chart(chart, for_pdf: bool = False) -> str:
    """A chart inline: SVG in the HTML page; in the PDF a PNG drawn at twice its size, since the PDF
    writer's fonts are not those the SVG's text was measured with (labels would be cut or overlap)."""
    import base64

    import vl_convert as vlc

    if not for_pdf:
        return vlc.vegalite_to_svg(chart.to_json())
    png = vlc.vegalite_to_png(chart.to_json(), scale=2)
    width = int.from_bytes(png[16:20], "big") // 2  # the IHDR width, in CSS pixels
    return (f"<img alt='' style='width:{width}px;max-width:100%' "
            f"src='data:image/png;base64,{base64.b64encode(png).decode()}'>")


def _html_table(rows: list[dict], columns: list[str], headers: list[str]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    def cell(v) -> str:
        return esc(v if isinstance(v, str) else _num(v))

    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """body{font-family:'Noto Sans','Noto Sans CJK SC','WenQuanYi Zen Hei','PingFang SC','Microsoft YaHei',
Arial,sans-serif;margin:2em;color:#222;font-size:13px}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;margin-top:1.6em}h3{font-size:14px;margin:.9em 0 .3em}
table{border-collapse:collapse;margin:.6em 0;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.verdict{font-size:18px;font-weight:bold;
padding:.6em;background:#eef6ee;border:1px solid #9c9}.verdict.open{background:#f6f3e8;border-color:#c9b98a}
pre{white-space:pre-wrap;background:#f8f8f8;
padding:.5em;border:1px solid #ddd}.lead ul{margin:.2em 0;padding-left:1.3em}.about{color:#444}
svg{max-width:100%;height:auto}details summary{cursor:pointer;font-weight:bold}
@page{size:A4;margin:1.4cm}@media print{body{margin:0}.lead{break-after:page}}"""


def to_html(d: Decision, lang: str = "en", generated_at: str | None = None, *, for_pdf: bool = False) -> str:
    """One self-contained page; the full reproducibility record is a collapsed section (`for_pdf`:
    named as the PDF's embedded file instead)."""
    from .charts import contribution_chart, sensitivity_chart

    r = build(d, lang, generated_at)
    esc = html.escape
    L = _Lang(lang)
    tables = {k: _html_table(*v) for k, v in _tables(d, r, L).items()}
    ul = lambda lines: "<ul>" + "".join(f"<li>{esc(x)}</li>" for x in lines) + "</ul>"  # noqa: E731
    sc = r["scenario"]
    title = esc(L("rep_title", scenario=sc["name"]))
    klass = "verdict open" if d.verdict in (TOO_CLOSE, NO_ELIGIBLE) else "verdict"  # green only for a winner
    out = [f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>",
           f"<title>{title}</title><style>{_CSS}</style></head><body><section class='lead'><h1>{title}</h1>",
           f"<p><em>{esc(L('rep_generated', when=r['generated_at']))}</em></p>",
           f"<p class='about'><strong>{esc(_scenario_line(r, L))}</strong>"
           + (f"<br>{esc(sc['description'])}" if sc["description"] else "") + "</p>",
           f"<h2>{esc(L('rep_verdict'))}</h2><div class='{klass}'>{esc(r['verdict_text'])}</div>",
           f"<p>{esc(votes_line(r, L))}</p>", *[f"<p>{esc(x)}</p>" for x in stars_lines(r, L)],
           f"<h3>{esc(L('rep_why'))}</h3>", ul(why_lines(d, L) or [L("rep_why_single")]),
           f"<h3>{esc(L('rep_cost_lead'))}</h3>", tables["lead_cost"],
           f"<h3>{esc(L('rep_risks'))}</h3>", ul(risk_lines(d, L)),
           f"<h3>{esc(L('rep_changes'))}</h3>", ul(change_lines(d, L)), "</section>",
           f"<h1>{esc(L('rep_evidence'))}</h1>",
           f"<h2>{esc(L('rec_ranking'))}</h2>", tables["ranking"],
           _chart(contribution_chart(d.ranking, lang, 520), for_pdf),
           f"<h2>{esc(L('rep_weights'))}</h2>", tables["weights"],
           f"<p>{esc(L('rep_normalisation'))}: {esc(L('rec_normalisation_text'))}.</p>"]
    if r["constraints"] or r["binding_constraints"]:
        out += [f"<h2>{esc(L('rep_constraints'))}</h2>", ul(_constraint_lines(r, L))]
    if "decision" in tables:
        out += [f"<h2>{esc(L('rep_decision_table'))}</h2>", tables["decision"]]
    if r["categories"]:
        out += [f"<h2>{esc(L('rep_categories'))}</h2>", tables["categories"]]
    out += [f"<h2>{esc(L('rep_sensitivity'))}</h2>", tables["sensitivity"]]
    if not d.sensitivity_curves.empty:
        out.append(_chart(sensitivity_chart(d.sensitivity_curves, lang, columns=2), for_pdf))
    out += [f"<h2>{esc(L('rep_cost'))}</h2>", tables["cost"]]
    if r["examples"]:
        out.append(f"<h2>{esc(L('rep_examples'))}</h2>")
        for ex in r["examples"]:
            out.append(f"<h3>{esc(ex['case_id'])}</h3>")
            asked = sc["prompts"].get(ex["case_id"])
            if asked:
                out.append(f"<p><strong>{esc(L('rep_prompt'))}</strong></p><pre>{esc(chr(10).join(asked))}</pre>")
            for m, text in ex["answers"].items():
                out.append(f"<p><strong>{esc(m)}</strong> ({esc(L('rec_score'))} {esc(_num(ex['scores'][m]))})</p>"
                           f"<pre>{esc(text)}</pre>")
    if r["cold_warm"]:
        used = L("rep_cache_used", mode=L("cache_" + r["cache_mode"]))
        out += [f"<h2>{esc(L('cmp_cold_warm'))}</h2>", f"<p>{esc(used)}</p>", tables["cold_warm"]]
    if r["hardware"]:
        out += [f"<h2>{esc(L('rep_bound'))}</h2>", ul(hardware_lines(r["hardware"], L))]
    out += [f"<h2>{esc(L('rep_caveats'))}</h2>", ul([say(c, lang) for c in d.caveats] or ["–"]),
            f"<h2>{esc(L('rep_repro'))}</h2>", tables["repro"]]
    if for_pdf:
        out.append(f"<p>{esc(L('rep_repro_full', where=L('rep_attached_pdf', name=sidecar_name(d.scenario_id))))}</p>")
    else:
        out += [f"<p>{esc(L('rep_repro_full', where=L('rep_attached_html')))}</p>",
                f"<details><summary>{esc(L('rep_repro_show'))}</summary><pre>{esc(reproducibility_json(d))}</pre>"
                "</details>"]
    out.append("</body></html>")
    return "\n".join(out)


def to_json(d: Decision, lang: str = "en", generated_at: str | None = None) -> str:
    return json.dumps(build(d, lang, generated_at), ensure_ascii=False, indent=2, default=str)


_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
# Font files that carry Chinese glyphs, by name, where fontconfig cannot be asked.
_CJK_FONT_FILES = re.compile(r"wqy|cjk|sourcehan|droidsansfallback|simhei|simsun|msyh|pingfang|notosanssc", re.I)
CJK_FONT_HINT = ("install one: sudo apt-get install fonts-wqy-zenhei (or fonts-noto-cjk); `make install` does "
                 "this when run as root")


def cjk_font() -> str | None:
    """A font on this machine with Chinese glyphs (its family), or None: without one a PDF's
    Chinese text would be drawn as empty boxes."""
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30).stdout
        families = [line.split(",")[0].strip() for line in out.splitlines() if line.strip()]
        return sorted(families)[0] if families else None
    except (OSError, subprocess.SubprocessError):
        pass
    for folder in (Path("/usr/share/fonts"), Path.home() / ".fonts", Path.home() / ".local/share/fonts"):
        if folder.is_dir():
            for f in folder.rglob("*"):
                if f.suffix.lower() in (".ttf", ".ttc", ".otf") and _CJK_FONT_FILES.search(f.name):
                    return f.stem
    return None


def to_pdf(d: Decision, lang: str = "en", generated_at: str | None = None) -> bytes:
    """The summary as PDF; ReportError, naming the font to install, where its Chinese text (a 中文
    summary, or Chinese cases in an English one) has no font to be drawn with."""
    from weasyprint import HTML, Attachment

    page = to_html(d, lang, generated_at, for_pdf=True)
    if _CJK.search(page) and cjk_font() is None:
        raise ReportError(f"PDF not written: the summary has Chinese text and no font on this machine has Chinese "
                          f"glyphs (they would print as empty boxes); {CJK_FONT_HINT}")
    record = Attachment(string=reproducibility_json(d), name=sidecar_name(d.scenario_id),
                        description=t("rep_repro", lang))
    return HTML(string=page).write_pdf(attachments=[record])


def render(d: Decision, fmt: str, lang: str = "en", generated_at: str | None = None) -> bytes:
    if fmt not in FORMATS:
        raise ReportError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "pdf":
        return to_pdf(d, lang, generated_at)
    if fmt == "md":
        return to_markdown(d, lang, generated_at).encode("utf-8")
    if fmt == "html":
        return to_html(d, lang, generated_at).encode("utf-8")
    return to_json(d, lang, generated_at).encode("utf-8")
