"""Documents larger than the context: chunks that keep headings and table rows whole, BM25 over
English and Chinese words, and a selection that fits the budget (or the whole set where it fits)."""
import pytest

from engine import retrieval

HANDBOOK = """# Leave

## Annual leave

Every employee has 25 days of annual leave a year. Unused days carry over until the end of March.

## Sick leave

Sick leave needs a doctor's note after three days of absence.

# Expenses

| Item | Limit | Receipt |
|---|---|---|
| Hotel | 180 EUR a night | yes |
| Meals | 45 EUR a day | yes |
| Taxi | 60 EUR a trip | over 20 EUR |
"""

HANDBOOK_ZH = """# 差旅

出差前需经部门经理在系统中审批。

# 加班

工作日加班按一点五倍工资计算，周末加班可以调休。
"""


def filler(n: int) -> str:
    return "\n\n".join(f"## Section {i}\n\nThis section describes routine office matters number {i} "
                       "such as printers, desks, badges and the kitchen rota." for i in range(n))


def test_chunks_keep_table_rows_whole_with_their_header_and_carry_the_heading():
    chunks = retrieval.chunk("handbook.md", HANDBOOK, size=20)
    rows = [c for c in chunks if "Hotel" in c.text or "Taxi" in c.text]
    assert all(c.heading == "Expenses" for c in rows)
    taxi = next(c for c in chunks if "Taxi" in c.text)
    assert "| Item | Limit | Receipt |" in taxi.text and "| Taxi | 60 EUR a trip | over 20 EUR |" in taxi.text
    assert "Meals" not in taxi.text  # one row per chunk at this size: rows are never cut, only kept apart
    sick = next(c for c in chunks if "doctor" in c.text)
    assert sick.heading == "Sick leave" and sick.text.startswith("Sick leave")
    assert [c.id for c in chunks][:2] == ["handbook.md#1", "handbook.md#2"]


def test_bm25_finds_the_passage_in_english_and_in_chinese():
    docs = [("handbook.md", HANDBOOK + filler(40)), ("zh.md", HANDBOOK_ZH)]
    chunks = retrieval.chunks_for(docs)
    key = retrieval._key(docs)
    best = chunks[retrieval.rank(chunks, "How much may I spend on a taxi?", key)[0]]
    assert "Taxi" in best.text
    best_zh = chunks[retrieval.rank(chunks, "周末加班怎么算？", key)[0]]
    assert "周末加班" in best_zh.text
    assert "加班" in retrieval.tokens("周末加班可以调休")  # jieba's words, not single characters


def test_whole_documents_when_they_fit_else_the_best_passages_within_the_budget():
    docs = [("handbook.md", HANDBOOK)]
    whole = retrieval.select(docs, "taxi limit", budget_tokens=10_000)
    assert whole.whole and whole.context == HANDBOOK and whole.passages == []
    big = [("handbook.md", HANDBOOK + filler(200)), ("zh.md", HANDBOOK_ZH)]
    assert retrieval.estimate_tokens(big[0][1]) > 3000
    part = retrieval.select(big, "How many days of annual leave do I get?", budget_tokens=300)
    assert not part.whole and part.tokens <= 300 and "25 days of annual leave" in part.context
    assert part.context.startswith("[handbook.md]")
    again = retrieval.select(big, "How many days of annual leave do I get?", budget_tokens=300)
    assert again.passages == part.passages  # the same choice every time: every model gets the same passages
    rec = part.record(source="handbook.md#1")
    assert rec["source_given"] == ("handbook.md#1" in part.passages)
    assert part.record(source="zh.md")["source_given"] is False


def test_chunks_are_made_once_and_kept_beside_the_documents(tmp_path):
    docs = [("handbook.md", HANDBOOK)]
    path = retrieval.save_chunks(docs, tmp_path)
    retrieval._CACHE.clear()
    loaded = retrieval.chunks_for(docs, tmp_path)
    assert path.is_file() and loaded == retrieval.chunk("handbook.md", HANDBOOK)
    changed = [("handbook.md", HANDBOOK + "\n\nNew rule.")]
    assert retrieval.chunks_for(changed, tmp_path) != loaded  # a stale chunk file is not used


@pytest.mark.parametrize("size", [50, 300])
def test_no_text_is_lost_by_chunking(size):
    text = HANDBOOK + filler(30)
    chunks = retrieval.chunk("h.md", text, size=size)
    words = set(retrieval.tokens(text)) - {"item", "limit", "receipt"}
    assert words <= set(retrieval.tokens(" ".join(c.text for c in chunks)))


# -- in a run: the same passages for every model, recorded, and said in the decision -----------

def write_kb(folder, n_filler: int = 300):
    import yaml

    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "handbook.md").write_text(HANDBOOK + filler(n_filler), encoding="utf-8")
    (docs / "zh.md").write_text(HANDBOOK_ZH, encoding="utf-8")
    cases = [{"id": "taxi", "category": "kb", "prompt": "What is the taxi limit per trip?",
              "context_file": ["docs/handbook.md", "docs/zh.md"], "source": "docs/handbook.md",
              "checks": [{"type": "contains", "value": ["60 EUR"]}]},
             {"id": "weekend", "category": "kb", "lang": "zh", "prompt": "周末加班怎么算？",
              "context_file": ["docs/handbook.md", "docs/zh.md"], "source": "docs/zh.md",
              "checks": [{"type": "contains", "value": ["调休"]}]},
             {"id": "badge", "category": "kb", "prompt": "Where do I collect a parking permit?",
              "context_file": ["docs/handbook.md", "docs/zh.md"], "source": "docs/zh.md",
              "checks": [{"type": "contains", "value": ["parking"]}]}]
    (folder / "kb.yaml").write_text(yaml.safe_dump({"id": "kb", "name": "kb", "description": "d",
                                                    "weights": {"quality": 1}, "defaults": {"max_tokens": 300},
                                                    "cases": cases}), encoding="utf-8")
    return folder / "kb.yaml"


def test_a_run_gives_every_model_the_same_retrieved_passages_and_records_them(store, tmp_path):
    from engine import RunConfig, Runner, compare, load_scenario
    from engine.recommend import recommend

    sc = load_scenario(str(write_kb(tmp_path)))
    assert retrieval.estimate_tokens(sc.cases[0].context) > 5000
    run_id = Runner(store).run(RunConfig(sc, ["fake/echo", "fake/other"], backend_options={"max_context": 1024}))
    gens = store.generations(run_id).set_index(["model_spec", "case_id"])
    given = gens.loc[("fake/echo", "taxi")].output_text
    assert "| Taxi | 60 EUR a trip |" in given and "Section 250" not in given  # the passage, not the whole
    assert gens.loc[("fake/other", "taxi")].output_text == given  # the same passages for the other model
    assert not gens.exceeds_context.fillna(False).any()
    recorded = store.get_run(run_id)["config_json"]
    import json

    rec = json.loads(recorded)["retrieval"]
    assert set(rec) == {"taxi", "weekend", "badge"} and not rec["taxi"]["whole"]
    assert rec["taxi"]["tokens"] <= rec["taxi"]["budget"] < 1024
    assert rec["taxi"]["source_given"] and rec["weekend"]["source_given"]
    recall = compare.retrieval_recall(store, "kb").iloc[0]
    assert recall.retrieved_cases == 3 and recall.cases_with_source == 3
    assert recall.source_given == sum(r["source_given"] for r in rec.values())
    d = recommend(store, "kb")
    assert any("did not fit the context for 3 cases (badge, taxi, weekend)" in c for c in d.caveats)
    # where the documents fit, they are given whole
    whole = Runner(store).run(RunConfig(sc, ["fake/echo"], case_ids=["taxi"], backend_options={"max_context": 200_000}))
    assert json.loads(store.get_run(whole)["config_json"])["retrieval"]["taxi"]["whole"] is True


def test_the_index_scores_as_rank_bm25_does():
    from rank_bm25 import BM25Okapi

    docs = [retrieval.tokens(c.text) for c in retrieval.chunk("h.md", HANDBOOK + filler(30) + HANDBOOK_ZH, 60)]
    ours = retrieval.Index(docs)
    theirs = BM25Okapi(docs)
    for q in ("taxi limit per trip", "周末加班", "section 7 printers kitchen", "nothing-like-this"):
        assert list(ours.scores(retrieval.tokens(q))) == pytest.approx(list(theirs.get_scores(retrieval.tokens(q))))


def test_the_warm_up_sends_the_retrieved_passages_as_the_timed_requests_do(store, tmp_path):
    """With documents past the context, the warm-up used to send the first case raw: the whole document.
    It sends what the timed requests send (the passages retrieval chose), never more."""
    from engine import RunConfig, Runner, load_scenario
    from tests.fakeservers import FakeServer, OpenAIHandler

    sc = load_scenario(str(write_kb(tmp_path)))
    whole = len(sc.cases[0].context)
    with FakeServer(OpenAIHandler, delay_s=0.0) as server:
        Runner(store).run(RunConfig(sc, [f"openai/echo@{server.url}/v1"], backend_options={"max_context": 1024}))
        sent = [b for p, b in server.httpd.requests if p == "/v1/chat/completions"]
    sizes = [sum(len(m["content"]) for m in b["messages"]) for b in sent]
    warm, timed = sizes[0], sizes[1:]
    assert sent[0]["max_tokens"] == 8 and len(timed) == 3  # the warm-up, then the three cases
    assert warm < whole / 3 and all(s < whole / 3 for s in timed), (warm, timed, whole)
