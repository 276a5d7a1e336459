"""Pairwise judging of a run: a judge model compares two models' answers case by case,
in both orders, and the verdicts (raw text included) are stored in judge_pairs."""
from __future__ import annotations

import json
import threading

import pandas as pd

from .backends import GenParams, resolve
from .checks.judge import judge_pair
from .store import Store, utcnow


def make_judge(spec: str):
    """(judge, backend): `judge(prompt) -> verdict text` on the judge model, loaded on first
    use and called one prompt at a time (runs on several hosts share it)."""
    backend = resolve(spec)
    lock = threading.Lock()
    loaded: list[bool] = []

    def judge(prompt: str) -> str:
        with lock:
            if not loaded:
                backend.load()
                loaded.append(True)
            params = GenParams(max_tokens=512, temperature=0.0, seed=0)
            return "".join(x for x in backend.stream([{"role": "user", "content": prompt}], params)
                           if isinstance(x, str))
    return judge, backend


def pairwise(store: Store, run_id: str, judge_spec: str, model_1: str, model_2: str,
             rubric: str | None = None) -> pd.DataFrame:
    """Judge every case (first repeat, every turn) both models answered; returns the rows stored."""
    gens = store.query("""SELECT model_spec, case_id, turn, output_text FROM generations
                          WHERE run_id = ? AND ok AND repeat = 0 AND model_spec IN (?, ?)""",
                       [run_id, model_1, model_2])
    if gens.empty or gens.model_spec.nunique() < 2:
        raise LookupError(f"run {run_id} has no answers from both {model_1} and {model_2}")
    questions = _questions(store, run_id)
    judge, backend = make_judge(judge_spec)
    rows = []
    try:
        for (case_id, turn), part in gens.groupby(["case_id", "turn"]):
            answers = dict(zip(part.model_spec, part.output_text))
            if len(answers) < 2:
                continue
            verdict = judge_pair(judge, questions.get((case_id, int(turn)), case_id),
                                 answers[model_1], answers[model_2], rubric)
            rows.append({"run_id": run_id, "case_id": case_id, "turn": int(turn), "judge_spec": judge_spec,
                         "model_1": model_1, "model_2": model_2, **verdict, "created_at": utcnow()})
    finally:
        backend.close()
    store.insert_rows("judge_pairs", rows)
    return pd.DataFrame(rows)


def _questions(store: Store, run_id: str) -> dict[tuple[str, int], str]:
    """The user message of each case and turn, from the run's scenario."""
    from .scenarios import ScenarioError, load_scenario

    run = store.get_run(run_id)
    if run is None:
        raise ValueError(f"no run {run_id!r} in {store.path}")
    source = json.loads(run["config_json"]).get("scenario_source") or run["scenario_id"]
    try:
        scenario = load_scenario(source)
    except ScenarioError:
        return {}  # the scenario file is gone: the judge sees the case id instead
    return {(c.id, i): msgs[-1]["content"] for c in scenario.cases for i, (msgs, _) in enumerate(c.turn_inputs())}


def pair_summary(store: Store, run_id: str) -> pd.DataFrame:
    return store.query("""SELECT judge_spec, model_1, model_2, avg(score_1) AS model_1_win_share,
                                 count(*) AS cases
                          FROM judge_pairs WHERE run_id = ? GROUP BY ALL""", [run_id])
