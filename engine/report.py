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

from .i18n import t
from .recommend import NO_ELIGIBLE, TOO_CLOSE, Decision, table_wide
from .textsafe import fence, markdown_text

FORMATS = ("md", "html", "json", "pdf")
_EXAMPLES = 3  # cases where the models' answers differ most in quality


class ReportError(ValueError):
    pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def verdict_text(d: Decision, lang: str, name=str) -> str:
    """The verdict in a sentence; `name` formats the winner (a code span on the dashboard)."""
    if d.verdict == TOO_CLOSE:
        return t("rec_too_close", lang)
    if d.verdict == NO_ELIGIBLE:
        return t("rec_no_eligible", lang)
    top = d.ranking.iloc[0]
    return t("rec_verdict_winner", lang, model=name(d.verdict), p=f"{top.p_first:.0%}",
             margin=f"{d.margin:.3f}" if d.margin is not None else "–")


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
    body["verdict_text"] = verdict_text(d, lang)
    body["generated_at"] = generated_at or _now()
    body["lang"] = lang
    return body


def _tables(d: Decision, r: dict, L) -> dict[str, tuple[list[dict], list[str], list[str]]]:
    """The report's tables, as (rows, columns, headers), shared by every format."""
    out = {
        # an excluded model's score is normalised against the eligible ones, so it is not comparable: not shown
        "ranking": ([row if row.get("eligible", True) else {**row, "score": None} for row in r["ranking"]],
                    ["model_spec", "score", "p_first", "reasons"],
                    [L("model"), L("rec_score"), L("rec_p_first"), L("rec_excluded_why")]),
        "weights": ([{"c": L(f"crit_{c}"), "w": f"{w:.0%}"} for c, w in r["weights"].items()], ["c", "w"],
                    [L("rec_criterion"), L("rec_weight")]),
        "categories": (r["categories"], ["category", "model_spec", "score", "ci_low", "ci_high", "n", "winner"],
                       [L("category"), L("model"), L("rec_score"), "95% low", "95% high", "n", L("winner")]),
        "sensitivity": (r["sensitivity"], ["criterion", "weight", "flip_low", "winner_below", "flip_high",
                                           "winner_above"],
                        [L("rec_criterion"), L("rec_weight"), L("rec_flip_low"), L("rec_winner_then"),
                         L("rec_flip_high"), L("rec_winner_then")]),
        "cold_warm": (r["cold_warm"], ["model_spec", "ttft_ms_cold", "ttft_ms_warm", "warm_over_cold"],
                      [L("model"), L("ttft_ms_cold"), L("ttft_ms_warm"), L("warm_over_cold")]),
        "cost": (r["cost"], ["model_spec", "gpu", "memory_need_gb", "price_per_hour", "currency", "capacity_source",
                             "cost_per_1k_requests", "cost_per_million_output_tokens", "monthly_cost",
                             "session_cost", "notes"],
                 [L("model"), "GPU", L("rec_memory_need"), L("rec_price"), L("rec_currency"),
                  L("rec_capacity_source"), L("rec_cost_1k"), L("rec_cost_mtok"), L("rec_monthly"),
                  L("rec_session"), L("rec_notes")]),
    }
    wide = table_wide(d.table)
    if not wide.empty:
        cols = [c for c in wide.columns if c not in ("row", "winner")]
        rows = [{**rec, "row": L(rec["row"]), "winner": L("tie") if rec["winner"] == "tie" else rec["winner"]}
                for rec in wide.to_dict("records")]
        out["decision"] = (rows, ["row", *cols, "winner"], [L("row"), *cols, L("winner")])
    return out


def votes_line(r: dict, L) -> str:
    hv = r["human_votes"]
    if not hv["votes"]:
        return L("rep_votes_none")
    return L("rep_votes", n=hv["votes"], cases=hv["cases"], raters=", ".join(hv["raters"]) or "–")


def hardware_lines(hardware: list[dict], L) -> list[str]:
    """"this model reaches 62% of what this machine allows", per model, with the figures."""
    return [L("rep_bound_line", model=h["model_spec"], pct=f"{h['bound_share']:.0%}",
              measured=f"{h['decode_tok_per_s']:.0f}", bound=f"{h['bound_tok_per_s']:.0f}",
              bw=f"{h['bandwidth_gb_per_s']:g}", source=h["bandwidth_source"]) for h in hardware]


def _constraint_lines(r: dict, L) -> list[str]:
    lines = [f"{L('constraint_' + k)}: {v}" for k, v in r["constraints"].items()]
    lines += [f"{L('constraint_' + b['constraint'])}: {L('rep_excludes')} {', '.join(b['excludes'])}"
              + (f" ({L('rep_binds')})" if b["binds"] else "") for b in r["binding_constraints"]]
    return lines


# --- Markdown ----------------------------------------------------------------------
def _md_escape(text: str) -> str:
    """Text that is not ours (ids, specs, notes with server errors in them) as literal Markdown."""
    return markdown_text(text)


def _md_table(rows: list[dict], columns: list[str], headers: list[str]) -> str:
    def cell(v):
        return _md_escape(_num(v) if not isinstance(v, str) else v).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(out)


def to_markdown(d: Decision, lang: str = "en", generated_at: str | None = None) -> str:
    r = build(d, lang, generated_at)
    L = lambda k, **kw: t(k, lang, **kw)  # noqa: E731
    tables = {k: _md_table(*v) for k, v in _tables(d, r, L).items()}
    parts = [f"# {L('rep_title', scenario=r['scenario_id'])}", "",
             f"_{L('rep_generated', when=r['generated_at'])}_", "",
             f"## {L('rep_verdict')}", "", f"**{_md_escape(r['verdict_text'])}**", ""]
    if r["more_cases"].get("note"):
        parts += [_md_escape(r["more_cases"]["note"]), ""]
    parts += [f"> ⚠ {_md_escape(w)}" for w in r["warnings"]] + ([""] if r["warnings"] else [])
    parts += [_md_escape(votes_line(r, L)), ""]
    parts += [f"## {L('rec_ranking')}", "", tables["ranking"], "",
              f"## {L('rep_weights')}", "", tables["weights"], "",
              f"{L('rep_normalisation')}: {L('rec_normalisation_text')}.", ""]
    if r["constraints"]:
        parts += [f"## {L('rep_constraints')}", ""] + [f"- {x}" for x in _constraint_lines(r, L)] + [""]
    if "decision" in tables:
        parts += [f"## {L('rep_decision_table')}", "", tables["decision"], ""]
    if r["categories"]:
        parts += [f"## {L('rep_categories')}", "", tables["categories"], ""]
    parts += [f"## {L('rep_sensitivity')}", "", tables["sensitivity"], "",
              f"## {L('rep_cost')}", "", tables["cost"], ""]
    if r["examples"]:
        parts += [f"## {L('rep_examples')}", ""]
        for ex in r["examples"]:
            parts.append(f"### {_md_escape(ex['case_id'])}")
            for m, text in ex["answers"].items():
                parts += [f"**{_md_escape(m)}** ({L('rec_score')} {_num(ex['scores'][m])}):", "",
                          fence(text), ""]
    if r["cold_warm"]:
        used = L("rep_cache_used", mode=L("cache_" + r["cache_mode"]))
        parts += [f"## {L('cmp_cold_warm')}", "", used, "", tables["cold_warm"], ""]
    if r["hardware"]:
        parts += [f"## {L('rep_bound')}", ""]
        parts += [f"- {_md_escape(x)}" for x in hardware_lines(r["hardware"], L)] + [""]
    parts += [f"## {L('rep_caveats')}", ""] + [f"- {_md_escape(c)}" for c in r["caveats"]] + [""]
    parts += [f"## {L('rep_repro')}", "", "```json",
              json.dumps(r["reproducibility"], ensure_ascii=False, indent=2, default=str), "```", ""]
    return "\n".join(parts)


# --- HTML --------------------------------------------------------------------------
def _svg(chart) -> str:
    import vl_convert as vlc

    return vlc.vegalite_to_svg(chart.to_json())


def _html_table(rows: list[dict], columns: list[str], headers: list[str]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    def cell(v) -> str:
        return esc(v if isinstance(v, str) else _num(v))

    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """body{font-family:'Noto Sans','Noto Sans CJK SC','WenQuanYi Zen Hei','PingFang SC','Microsoft YaHei',
Arial,sans-serif;margin:2em;color:#222;font-size:13px}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#f3f3f3}.verdict{font-size:18px;font-weight:bold;
padding:.6em;background:#eef6ee;border:1px solid #9c9}pre{white-space:pre-wrap;background:#f8f8f8;
padding:.5em;border:1px solid #ddd}@media print{body{margin:1cm}svg{max-width:100%}}"""


def to_html(d: Decision, lang: str = "en", generated_at: str | None = None) -> str:
    from .charts import contribution_chart, sensitivity_chart

    r = build(d, lang, generated_at)
    esc = html.escape
    L = lambda k, **kw: t(k, lang, **kw)  # noqa: E731
    tables = {k: _html_table(*v) for k, v in _tables(d, r, L).items()}
    title = esc(L("rep_title", scenario=r["scenario_id"]))
    out = [f"<!DOCTYPE html><html lang='{lang}'><head><meta charset='utf-8'>",
           f"<title>{title}</title><style>{_CSS}</style></head><body><h1>{title}</h1>",
           f"<p><em>{esc(L('rep_generated', when=r['generated_at']))}</em></p>",
           f"<h2>{esc(L('rep_verdict'))}</h2><div class='verdict'>{esc(r['verdict_text'])}</div>"]
    if r["more_cases"].get("note"):
        out.append(f"<p>{esc(r['more_cases']['note'])}</p>")
    out += [f"<p class='warning'>⚠ {esc(w)}</p>" for w in r["warnings"]]
    out.append(f"<p>{esc(votes_line(r, L))}</p>")
    out += [f"<h2>{esc(L('rec_ranking'))}</h2>", tables["ranking"], _svg(contribution_chart(d.ranking, lang)),
            f"<h2>{esc(L('rep_weights'))}</h2>", tables["weights"],
            f"<p>{esc(L('rep_normalisation'))}: {esc(L('rec_normalisation_text'))}.</p>"]
    if r["constraints"]:
        out.append(f"<h2>{esc(L('rep_constraints'))}</h2><ul>"
                   + "".join(f"<li>{esc(x)}</li>" for x in _constraint_lines(r, L)) + "</ul>")
    if "decision" in tables:
        out += [f"<h2>{esc(L('rep_decision_table'))}</h2>", tables["decision"]]
    if r["categories"]:
        out += [f"<h2>{esc(L('rep_categories'))}</h2>", tables["categories"]]
    out += [f"<h2>{esc(L('rep_sensitivity'))}</h2>", tables["sensitivity"]]
    if not d.sensitivity_curves.empty:
        out.append(_svg(sensitivity_chart(d.sensitivity_curves, lang)))
    out += [f"<h2>{esc(L('rep_cost'))}</h2>", tables["cost"]]
    if r["examples"]:
        out.append(f"<h2>{esc(L('rep_examples'))}</h2>")
        for ex in r["examples"]:
            out.append(f"<h3>{esc(ex['case_id'])}</h3>")
            for m, text in ex["answers"].items():
                out.append(f"<p><strong>{esc(m)}</strong> ({esc(L('rec_score'))} {esc(_num(ex['scores'][m]))})</p>"
                           f"<pre>{esc(text)}</pre>")
    if r["cold_warm"]:
        used = L("rep_cache_used", mode=L("cache_" + r["cache_mode"]))
        out += [f"<h2>{esc(L('cmp_cold_warm'))}</h2>", f"<p>{esc(used)}</p>", tables["cold_warm"]]
    if r["hardware"]:
        out.append(f"<h2>{esc(L('rep_bound'))}</h2><ul>"
                   + "".join(f"<li>{esc(x)}</li>" for x in hardware_lines(r["hardware"], L)) + "</ul>")
    out += [f"<h2>{esc(L('rep_caveats'))}</h2><ul>" + "".join(f"<li>{esc(c)}</li>" for c in r["caveats"]) + "</ul>",
            f"<h2>{esc(L('rep_repro'))}</h2><pre>"
            + esc(json.dumps(r["reproducibility"], ensure_ascii=False, indent=2, default=str)) + "</pre>",
            "</body></html>"]
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
    from weasyprint import HTML

    page = to_html(d, lang, generated_at)
    if _CJK.search(page) and cjk_font() is None:
        raise ReportError(f"PDF not written: the summary has Chinese text and no font on this machine has Chinese "
                          f"glyphs (they would print as empty boxes); {CJK_FONT_HINT}")
    return HTML(string=page).write_pdf()


def render(d: Decision, fmt: str, lang: str = "en", generated_at: str | None = None) -> bytes:
    if fmt not in FORMATS:
        raise ReportError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "pdf":
        return to_pdf(d, lang, generated_at)
    text = {"md": to_markdown, "html": to_html, "json": to_json}[fmt](d, lang, generated_at)
    return text.encode("utf-8")
