"""Human ratings: stars per answer and dimension, and blind A/B votes turned into
Bradley-Terry strengths with bootstrap confidence intervals."""
from __future__ import annotations

import itertools
import random

import numpy as np
import pandas as pd

from .store import Store, utcnow

DIMENSIONS = ("overall", "accuracy", "fluency", "instruction_following", "tone")
VOTES = ("left", "right", "tie", "both_bad")


def add_stars(store: Store, run_id: str, model_spec: str, case_id: str, repeat: int, turn: int,
              dimension: str, stars: int, rater: str) -> None:
    if not rater.strip():
        raise ValueError("rater: give your name so ratings can be told apart")
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension: {dimension!r} is not one of {', '.join(DIMENSIONS)}")
    if not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValueError("stars: give 1 to 5")
    store.insert_rows("ratings", [{"run_id": run_id, "model_spec": model_spec, "case_id": case_id,
                                   "repeat": repeat, "turn": turn, "dimension": dimension, "stars": stars,
                                   "rater": rater.strip(), "created_at": utcnow()}])


def star_summary(store: Store, run_id: str | None = None, scenario_id: str | None = None,
                 n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per model and dimension: mean stars with a 95% interval from a bootstrap over cases
    (all ratings of one case, its repeats, turns and raters, move together)."""
    where, params = ("WHERE r.run_id = ?", [run_id]) if run_id else (
        ("WHERE u.scenario_id = ?", [scenario_id]) if scenario_id else ("", []))
    # one rating per rater, answer and dimension: the latest (a re-rating replaces the earlier star; every
    # row stays in the table as the record of what was said when)
    rows = store.query(f"""WITH latest AS (
                               SELECT * FROM ratings QUALIFY row_number() OVER (
                                   PARTITION BY run_id, model_spec, case_id, repeat, turn, dimension, rater
                                   ORDER BY created_at DESC) = 1)
                           SELECT r.model_spec, r.dimension, r.case_id, avg(r.stars) AS case_stars,
                                  count(*) AS n, list(DISTINCT r.rater) AS raters
                           FROM latest r JOIN runs u USING (run_id) {where}
                           GROUP BY ALL ORDER BY ALL""", params)
    cols = ["model_spec", "dimension", "stars_mean", "ci_low", "ci_high", "cases", "ratings", "raters"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    rng = np.random.default_rng(seed)
    out = []
    for (model, dim), g in rows.groupby(["model_spec", "dimension"], sort=True):
        per_case = g.case_stars.to_numpy(dtype=float)
        means = per_case[rng.integers(0, len(per_case), size=(n_boot, len(per_case)))].mean(axis=1)
        spread = len(per_case) > 1  # one case has no interval over cases (not a zero-width one)
        out.append({"model_spec": model, "dimension": dim, "stars_mean": float(per_case.mean()),
                    "ci_low": float(np.percentile(means, 2.5)) if spread else None,
                    "ci_high": float(np.percentile(means, 97.5)) if spread else None,
                    "cases": len(per_case), "ratings": int(g.n.sum()),
                    "raters": len({r for raters in g.raters for r in raters})})
    return pd.DataFrame(out, columns=cols)


def stars_text(mean: float, low: float | None, high: float | None) -> str:
    """★★★★☆ 3.8 (3.2–4.4): the mean rounded to whole stars, the figure and its interval (none for one case)."""
    full = int(round(mean))
    shown = f"{'★' * full}{'☆' * (5 - full)} {mean:.1f}"
    if low is None or high is None or low != low or high != high:
        return shown
    return f"{shown} ({low:.1f}–{high:.1f})"


def next_pair(store: Store, scenario_id: str, rng: random.Random | None = None,
              avoid: tuple | None = None, rater: str | None = None) -> dict | None:
    """Two answers to one case from two different models (latest run of each), in random
    order; never the (case, turn) just voted on (`avoid`) while another one exists, and never a
    pair `rater` has voted on already. None when fewer than two models have answered any case
    of the scenario, or when the rater has voted on every pair."""
    rng = rng or random.Random()
    df = store.query("""
        WITH last AS (SELECT g.model_spec, arg_max(g.run_id, r.started_at) AS run_id
                      FROM generations g JOIN runs r USING (run_id) WHERE r.scenario_id = ? GROUP BY 1)
        SELECT g.run_id, g.model_spec, g.case_id, g.turn, g.output_text
        FROM generations g JOIN last USING (model_spec, run_id)
        WHERE g.ok AND g.repeat = 0 ORDER BY g.case_id, g.turn, g.model_spec""", [scenario_id])
    done = set()
    if rater and rater.strip():
        for v in store.query("SELECT case_id, turn, left_run_id, left_model, right_run_id, right_model FROM ab_votes "
                             "WHERE scenario_id = ? AND rater = ?", [scenario_id, rater.strip()]).itertuples():
            done.add((v.case_id, int(v.turn), frozenset({(v.left_run_id, v.left_model),
                                                          (v.right_run_id, v.right_model)})))
    pairs = []
    for (case_id, turn), part in df.groupby(["case_id", "turn"]):
        rows = part.to_dict("records")
        for a, b in itertools.combinations(rows, 2):
            key = (case_id, int(turn), frozenset({(a["run_id"], a["model_spec"]), (b["run_id"], b["model_spec"])}))
            if a["model_spec"] != b["model_spec"] and key not in done:
                pairs.append((a, b))
    if not pairs:
        return None
    others = [p for p in pairs if avoid is None or (p[0]["case_id"], int(p[0]["turn"])) != tuple(avoid)]
    left, right = rng.choice(others or pairs)
    if rng.random() < 0.5:
        left, right = right, left
    return {"scenario_id": scenario_id, "case_id": left["case_id"], "turn": int(left["turn"]),
            "question": question(scenario_id, left["case_id"], int(left["turn"])),
            "left": left, "right": right}


def question(scenario_id: str, case_id: str, turn: int) -> str:
    """The user message a rater needs to judge the answers ('' if the scenario is gone)."""
    from .scenarios import ScenarioError, load_scenario

    try:
        case = next(c for c in load_scenario(scenario_id).cases if c.id == case_id)
        return case.turn_inputs()[turn][0][-1]["content"]
    except (ScenarioError, StopIteration, IndexError):
        return ""


def setting(scenario_id: str, case_id: str, turn: int) -> dict:
    """What a rater needs besides the question to judge an answer: the instructions the answer
    must follow (the case's system message), the documents it was given (names) and, for a later
    turn, the user's earlier messages. Empty when the scenario is gone."""
    from .scenarios import ScenarioError, load_scenario

    try:
        case = next(c for c in load_scenario(scenario_id).cases if c.id == case_id)
    except (ScenarioError, StopIteration):
        return {"system": "", "documents": [], "earlier": []}
    earlier = [t.user for t in (case.turns or [])[:turn]]
    return {"system": case.system or "", "documents": case.documents(), "earlier": earlier}


def earlier_answers(store: Store, run_id: str, model_spec: str, case_id: str, turn: int,
                    repeat: int = 0) -> list[str]:
    """A model's own answers to the turns before `turn` of a multi-turn case, in order."""
    if turn <= 0:
        return []
    df = store.query("SELECT turn, output_text FROM generations WHERE run_id = ? AND model_spec = ? AND case_id = ? "
                     "AND repeat = ? AND turn < ? ORDER BY turn", [run_id, model_spec, case_id, repeat, turn])
    return [t or "" for t in df.output_text]


def add_vote(store: Store, pair: dict, vote: str, rater: str) -> None:
    if vote not in VOTES:
        raise ValueError(f"vote: {vote!r} is not one of {', '.join(VOTES)}")
    if not rater.strip():
        raise ValueError("rater: give your name so votes can be told apart")
    store.replace_vote({  # a second vote of one rater on one pair replaces the first: never two that contradict
        "scenario_id": pair["scenario_id"], "case_id": pair["case_id"], "turn": pair["turn"],
        "left_run_id": pair["left"]["run_id"], "left_model": pair["left"]["model_spec"],
        "right_run_id": pair["right"]["run_id"], "right_model": pair["right"]["model_spec"],
        "vote": vote, "rater": rater.strip(), "created_at": utcnow()})


def votes(store: Store, scenario_id: str | None = None) -> pd.DataFrame:
    where, params = ("WHERE scenario_id = ?", [scenario_id]) if scenario_id else ("", [])
    return store.query(f"SELECT * FROM ab_votes {where} ORDER BY created_at", params)


def _outcomes(v: pd.DataFrame) -> list[tuple[str, str, float]]:
    """(model_i, model_j, i's share of the win); 'both bad' carries no preference."""
    return [o for _, o in _case_outcomes(v)]


def _case_outcomes(v: pd.DataFrame) -> list[tuple[tuple, tuple[str, str, float]]]:
    out = []
    for r in v.itertuples():
        share = {"left": 1.0, "right": 0.0, "tie": 0.5}.get(r.vote)
        if share is not None:
            out.append(((r.case_id, r.turn), (r.left_model, r.right_model, share)))
    return out


def bradley_terry(outcomes: list[tuple[str, str, float]], iters: int = 500, prior: float = 0.5) -> dict[str, float]:
    """Strengths by the MM algorithm (Hunter 2004), ties as half wins. A small prior win
    against a virtual average opponent keeps strengths finite for unbeaten models.
    Returned on an Elo-like scale: 1000 + 400 log10(strength / geometric mean)."""
    models = sorted({m for a, b, _ in outcomes for m in (a, b)})
    if not models:
        return {}
    idx = {m: i for i, m in enumerate(models)}
    wins = np.full(len(models), prior)
    pairs = np.zeros((len(models), len(models)))
    for a, b, s in outcomes:
        i, j = idx[a], idx[b]
        wins[i] += s
        wins[j] += 1 - s
        pairs[i, j] += 1
        pairs[j, i] += 1
    p = np.ones(len(models))
    for _ in range(iters):
        denom = (pairs / (p[:, None] + p[None, :])).sum(axis=1) + 2 * prior / (p + 1.0)
        p = wins / denom
        p /= np.exp(np.log(p).mean())
    return {m: 1000 + 400 * float(np.log10(p[idx[m]])) for m in models}


def ratings_table(v: pd.DataFrame, n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Per model: Bradley-Terry rating with a bootstrap 95% CI, and the vote count. The
    bootstrap resamples cases: all votes on one case and turn move together."""
    tagged = _case_outcomes(v)
    outcomes = [o for _, o in tagged]
    if not outcomes:
        return pd.DataFrame(columns=["model_spec", "rating", "ci_low", "ci_high", "votes"])
    point = bradley_terry(outcomes)
    by_case: dict[tuple, list] = {}
    for key, o in tagged:
        by_case.setdefault(key, []).append(o)
    groups = list(by_case.values())
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {m: [] for m in point}
    for _ in range(n_boot):
        draw = [o for i in rng.integers(0, len(groups), len(groups)) for o in groups[i]]
        for m, r in bradley_terry(draw, iters=200).items():
            samples[m].append(r)
    counts = pd.Series([m for a, b, _ in outcomes for m in (a, b)]).value_counts()
    rows = [{"model_spec": m, "rating": r,
             "ci_low": float(np.percentile(samples[m], 2.5)) if samples[m] else r,
             "ci_high": float(np.percentile(samples[m], 97.5)) if samples[m] else r,
             "votes": int(counts.get(m, 0))} for m, r in point.items()]
    return pd.DataFrame(rows).sort_values("rating", ascending=False, ignore_index=True)


# --- the judge against your raters ---------------------------------------------------
MIN_SHARED_CASES = 5  # fewer cases judged and voted on alike give no agreement figure
_OUTCOMES = ("first", "tie", "second")


def _outcome(share: float) -> str:
    """A's share of the win (1, 0.5, 0, or a mean of several) as who won: first, tie or second."""
    return "first" if share > 0.5 else "second" if share < 0.5 else "tie"


def _kappa(h: np.ndarray, j: np.ndarray) -> float | None:
    """Cohen's kappa of two raters' labels (codes 0..2); None where chance agreement is total."""
    po = float(np.mean(h == j))
    pe = float(sum(np.mean(h == k) * np.mean(j == k) for k in range(len(_OUTCOMES))))
    return None if pe >= 1 else (po - pe) / (1 - pe)


def _agreement_of(items: pd.DataFrame, n_boot: int, seed: int) -> dict:
    """Share agreeing and kappa over the items (a case's items move together in the bootstrap)."""
    codes = {o: i for i, o in enumerate(_OUTCOMES)}
    h, j = items.human.map(codes).to_numpy(), items.judge.map(codes).to_numpy()
    cases = items.case_id.to_numpy()
    n_cases = len(set(cases))
    out: dict = {"items": len(items), "cases": n_cases, "share": None, "share_ci": (None, None),
                 "kappa": None, "kappa_ci": (None, None), "chance": None, "problem": None}
    if n_cases < MIN_SHARED_CASES:
        out["problem"] = ("agree_too_few", {"n": n_cases, "minimum": MIN_SHARED_CASES})
        return out
    out["share"], out["kappa"] = float(np.mean(h == j)), _kappa(h, j)
    by_case = [np.flatnonzero(cases == c) for c in dict.fromkeys(cases)]
    rng = np.random.default_rng(seed)
    shares, kappas = [], []
    for _ in range(n_boot):
        pick = np.concatenate([by_case[i] for i in rng.integers(0, len(by_case), len(by_case))])
        shares.append(np.mean(h[pick] == j[pick]))
        k = _kappa(h[pick], j[pick])
        if k is not None:
            kappas.append(k)
    out["share_ci"] = tuple(float(x) for x in np.percentile(shares, [2.5, 97.5]))
    if out["kappa"] is None or len(kappas) < n_boot / 2:
        out["problem"] = ("agree_one_outcome", {})  # every verdict the same: kappa says nothing
        out["chance"] = True
        return out
    out["kappa_ci"] = tuple(float(x) for x in np.percentile(kappas, [2.5, 97.5]))
    out["chance"] = out["kappa_ci"][0] <= 0  # the interval includes chance agreement
    return out


def judge_agreement(votes: pd.DataFrame, pairs: pd.DataFrame, case_lang: dict[str, str | None] | None = None,
                    n_boot: int = 2000, seed: int = 0) -> dict[str, dict]:
    """Per judge: how often its pairwise verdicts agree with your raters' blind A/B votes on the same
    case, turn and pair of models (share agreeing and Cohen's kappa over first / tie / second, each with
    a 95% interval from a bootstrap over cases), overall and per language. Votes of several raters on
    one item are averaged first; "both bad" votes and unreadable verdicts carry no outcome.

    A judge with fewer than 5 cases in common with the votes, or none (a judge run on other cases),
    gets no figure but a `problem` saying why; `chance` is True where the kappa interval includes 0."""
    langs = case_lang or {}
    human: dict[tuple, list[float]] = {}
    for r in votes.itertuples() if votes is not None and not votes.empty else []:
        share = {"left": 1.0, "right": 0.0, "tie": 0.5}.get(r.vote)
        if share is None:
            continue
        a, b = sorted((r.left_model, r.right_model))
        human.setdefault((r.case_id, int(r.turn), a, b), []).append(share if r.left_model == a else 1 - share)
    out: dict[str, dict] = {}
    if pairs is None or pairs.empty:
        return out
    for judge, part in pairs.groupby("judge_spec"):
        rows = []
        for r in part.itertuples():
            if r.score_1 is None or r.score_1 != r.score_1:
                continue
            a, b = sorted((r.model_1, r.model_2))
            key = (r.case_id, int(r.turn), a, b)
            if key in human:
                rows.append({"case_id": r.case_id, "lang": langs.get(r.case_id),
                             "human": _outcome(float(np.mean(human[key]))),
                             "judge": _outcome(r.score_1 if r.model_1 == a else 1 - r.score_1)})
        items = pd.DataFrame(rows, columns=["case_id", "lang", "human", "judge"])
        if items.empty:
            voted = {k[0] for k in human}
            judged = set(part.case_id)
            res: dict = {"items": 0, "cases": 0, "share": None, "share_ci": (None, None), "kappa": None,
                   "kappa_ci": (None, None), "chance": None,
                   "problem": ("agree_no_shared", {"judged": len(judged), "voted": len(voted)}), "per_lang": {}}
        else:
            res = _agreement_of(items, n_boot, seed)
            res["per_lang"] = {str(lang): _agreement_of(g, n_boot, seed)
                               for lang, g in items.groupby(items.lang.fillna("other"))}
        out[str(judge)] = res
    return out
