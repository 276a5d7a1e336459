"""Altair charts for the Compare page: distributions, not only bars."""
from __future__ import annotations

import altair as alt
import pandas as pd

from .i18n import label, t

_MODEL_AXIS = alt.Axis(labelAngle=0, labelLimit=260)


def _distribution(gens: pd.DataFrame, column: str, title: str, lang: str) -> alt.Chart:
    data = gens.loc[gens.ok & gens[column].notna(), ["model_spec", "case_id", column]]
    base = alt.Chart(data).encode(
        x=alt.X("model_spec:N", title=t("model", lang), axis=_MODEL_AXIS),
        y=alt.Y(f"{column}:Q", title=title, scale=alt.Scale(zero=False)),
    )
    box = base.mark_boxplot(extent="min-max", opacity=0.5, size=40).encode(color=alt.Color("model_spec:N", legend=None))
    points = base.mark_tick(color="black", opacity=0.5, thickness=1, size=30).encode(
        tooltip=["model_spec", "case_id", alt.Tooltip(f"{column}:Q", format=".1f")])
    return (box + points).properties(title=title, height=280)


def ttft_chart(gens: pd.DataFrame, lang: str) -> alt.Chart:
    return _distribution(gens, "ttft_ms", t("chart_ttft", lang), lang)


def latency_chart(gens: pd.DataFrame, lang: str) -> alt.Chart:
    return _distribution(gens, "e2e_ms", t("chart_latency", lang), lang)


def throughput_chart(gens: pd.DataFrame, lang: str) -> alt.Chart:
    return _distribution(gens, "decode_tok_per_s", t("chart_decode", lang), lang)


def history_chart(hist: pd.DataFrame, metric: str, lang: str) -> alt.Chart:
    """One point per run, oldest left, labelled by its start (runs minutes apart would crowd a
    time axis into unreadable ticks)."""
    hist = hist.sort_values("started_at").assign(
        run_label=lambda d: pd.to_datetime(d.started_at).dt.strftime("%Y-%m-%d %H:%M") + " · " + d.run_id.str[-6:])
    return alt.Chart(hist).mark_line(point=True).encode(
        x=alt.X("run_label:O", title=t("run_started", lang), sort=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y(f"{metric}:Q", title=t(metric, lang), scale=alt.Scale(zero=False)),
        color=alt.Color("model_spec:N", title=t("model", lang)),
        tooltip=["run_id", alt.Tooltip("started_at:T", format="%Y-%m-%d %H:%M:%S"), "model_spec",
                 alt.Tooltip(f"{metric}:Q", format=".2f")],
    ).properties(title=t("chart_history", lang), height=260)


def sweep_chart(levels: pd.DataFrame, lang: str) -> alt.VConcatChart:
    """Against concurrency: output tokens/s, requests/s beside goodput, and the TTFT and
    inter-token latency percentiles: where the server saturates and where the SLOs break."""
    x = alt.X("concurrency:O", title=t("concurrency", lang))

    def lines(columns: list[str], title_key: str, y_key: str, legend_key: str = "percentile") -> alt.Chart:
        names = {c: t(c, lang) for c in columns}
        return alt.Chart(levels).transform_fold([*columns], as_=["key", "value"]).transform_calculate(
            series=" + ".join(f"(datum.key == '{c}' ? '{n}' : '')" for c, n in names.items()),
        ).mark_line(point=True).encode(
            x=x, y=alt.Y("value:Q", title=t(y_key, lang)),
            color=alt.Color("series:N", title=t(legend_key, lang), sort=list(names.values())),
            tooltip=["concurrency", alt.Tooltip("series:N"), alt.Tooltip("value:Q", format=".1f")],
        ).properties(title=t(title_key, lang), height=220, width=320)

    throughput = alt.Chart(levels).mark_line(point=True).encode(
        x=x, y=alt.Y("output_tok_per_s:Q", title=t("output_tok_per_s", lang)),
        tooltip=["concurrency", alt.Tooltip("output_tok_per_s:Q", format=".1f"), "errors"],
    ).properties(title=t("chart_sweep_throughput", lang), height=220, width=320)
    rates = lines(["req_per_s", "goodput_req_per_s"], "chart_sweep_goodput", "req_per_s", "metric")
    ttft = lines(["ttft_ms_p50", "ttft_ms_p95", "ttft_ms_p99"], "chart_sweep_ttft_pct", "chart_ttft")
    itl = lines(["itl_ms_p50", "itl_ms_p95", "itl_ms_p99"], "chart_sweep_itl", "chart_sweep_itl")
    return alt.vconcat(alt.hconcat(throughput, rates), alt.hconcat(ttft, itl))


def category_score_chart(cats: pd.DataFrame, lang: str) -> alt.Chart:
    """Mean check score per category with its bootstrap 95% interval."""
    data = cats.assign(category=cats["category"].map(lambda c: label(c, lang)))
    base = alt.Chart(data).encode(
        y=alt.Y("category:N", title=t("category", lang), axis=alt.Axis(labelLimit=200)),
        yOffset="model_spec:N", color=alt.Color("model_spec:N", title=t("model", lang)))
    bars = base.mark_errorbar(ticks=True).encode(
        x=alt.X("ci_low:Q", title=t("chart_quality", lang), scale=alt.Scale(domain=[0, 1])), x2="ci_high:Q")
    points = base.mark_point(filled=True, size=60).encode(
        x="score:Q", tooltip=["model_spec", "category", alt.Tooltip("score:Q", format=".2f"),
                              alt.Tooltip("ci_low:Q", format=".2f"), alt.Tooltip("ci_high:Q", format=".2f"), "n"])
    return (bars + points).properties(title=t("chart_quality", lang), height=max(160, 40 * len(data)))


def contribution_chart(ranking: pd.DataFrame, lang: str, width: int | None = None) -> alt.Chart:
    """Each model's score as a stacked bar of its per-criterion contributions. The legend sits
    below the bars, in columns, so every criterion is listed however narrow the chart and
    however few the models; each model has a row of its own, its name on the left axis."""
    parts = [c for c in ranking.columns if c.startswith("part_")]
    data = ranking.melt(id_vars=["model_spec"], value_vars=parts, var_name="criterion", value_name="contribution")
    data["criterion"] = data.criterion.str.removeprefix("part_").map(lambda c: t(f"crit_{c}", lang))
    chart = alt.Chart(data).mark_bar().encode(
        y=alt.Y("model_spec:N", title=None, sort=ranking.model_spec.tolist(),
                axis=alt.Axis(labelLimit=320, labelFontSize=12)),
        x=alt.X("contribution:Q", title=t("rec_score", lang), scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("criterion:N", title=t("rec_criterion", lang), sort=[t(f"crit_{p[5:]}", lang) for p in parts],
                        legend=alt.Legend(orient="bottom", columns=4, labelLimit=220)),
        tooltip=[alt.Tooltip("model_spec:N", title=t("model", lang)),
                 alt.Tooltip("criterion:N", title=t("rec_criterion", lang)),
                 alt.Tooltip("contribution:Q", title=t("rec_score", lang), format=".3f")],
    ).properties(title=t("rec_contributions", lang), height=alt.Step(44))
    return chart.properties(width=width) if width else chart


def sensitivity_chart(curves: pd.DataFrame, lang: str, columns: int = 3) -> alt.FacetChart:
    """Per criterion, each model's score as that criterion's weight share moves from 0 to 1
    (the others keep their proportions); the rule marks the current weight."""
    data = curves.assign(criterion=curves.criterion.map(lambda c: t(f"crit_{c}", lang)))
    lines = alt.Chart().mark_line().encode(
        x=alt.X("weight:Q", title=t("rec_weight_share", lang), scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("score:Q", title=t("rec_score", lang)),
        color=alt.Color("model_spec:N", title=t("model", lang), legend=alt.Legend(orient="bottom", labelLimit=320)),
    )
    rule = alt.Chart().mark_rule(strokeDash=[4, 3], color="gray").encode(x="mean(current):Q")
    return alt.layer(lines, rule, data=data).properties(width=220, height=160).facet(
        facet=alt.Facet("criterion:N", title=None), columns=columns,
    ).properties(title=t("rec_sensitivity", lang))
