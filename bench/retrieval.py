"""A document set of real size through the import and retrieval, timed.

Writes 200 documents (Markdown, Word and PDF; about 20 MB of text together, English and Chinese
policy text with headings and tables), and a sheet of 30 questions each naming the document that
answers it; imports them as a scenario (`engine import --docs`, in process), then selects each
case's passages at an 8k-token budget as a run does. Prints:

  import_s            the import: text extraction, saving, chunking once
  retrieval_ms_p50    selection per case (BM25 over every chunk), median; also the first case,
                      which builds the index
  recall              the share of the questions whose source document was among the passages

    .venv/bin/python bench/retrieval.py [--docs 200] [--mb 20]
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TOPICS = ["travel", "leave", "expenses", "security", "laptops", "parking", "training", "overtime", "remote work",
          "health insurance", "pensions", "onboarding", "offboarding", "procurement", "printing"]
ZH = ["差旅", "年假", "报销", "信息安全", "笔记本电脑", "停车", "培训", "加班", "远程办公", "医疗保险"]


def document(i: int, size: int, rng: random.Random) -> tuple[str, str]:
    """(a policy's key fact, its text of about `size` characters)."""
    topic = TOPICS[i % len(TOPICS)]
    code = f"P{i:03d}-{rng.randint(1000, 9999)}"
    fact = f"The approval code for {topic} policy {i} is {code}."
    parts = [f"# Policy {i}: {topic}", "", f"## Scope of policy {i}", "", fact, ""]
    n = 0
    while sum(len(p) for p in parts) < size:
        n += 1
        if n % 7 == 0:
            parts += ["| Item | Limit | Approver |", "|---|---|---|",
                      *[f"| {topic} item {n}-{k} | {rng.randint(10, 900)} EUR | level {k} |" for k in range(5)], ""]
        elif n % 11 == 0:
            z = ZH[i % len(ZH)]
            rule = f"关于{z}的第 {n} 条规定：员工应当提前提交申请，并由部门经理审批。"
            parts += [f"## {z}规定 {n}", "", rule * 3, ""]
        else:
            parts += [f"## Section {n}", "", " ".join(rng.choice(
                ["Employees", "must", "should", "submit", "requests", "in", "the", "portal", "before", "travel",
                 "managers", "approve", "within", "five", "days", "receipts", "are", "kept", "for", "audit"])
                for _ in range(120)) + ".", ""]
    return code, "\n".join(parts)


def write_set(folder: Path, n_docs: int, total_mb: float, seed: int = 0) -> list[tuple[str, str, str]]:
    """(file name, its approval code, its topic) of each document written."""
    from docx import Document

    rng = random.Random(seed)
    size = int(total_mb * 1e6 / n_docs)
    out = []
    for i in range(n_docs):
        code, text = document(i, size, rng)
        kind = "pdf" if i % 10 == 9 else "docx" if i % 5 == 4 else "md"
        name = f"policy-{i:03d}.{kind}"
        if kind == "md":
            (folder / name).write_text(text, encoding="utf-8")
        elif kind == "docx":
            doc = Document()
            for para in text.split("\n\n"):
                doc.add_paragraph(para)
            doc.save(str(folder / name))
        else:
            from weasyprint import HTML

            body = "".join(f"<p>{p}</p>" for p in text[: size // 4].split("\n\n"))  # PDFs are slow to write
            HTML(string=f"<html><body>{body}</body></html>").write_pdf(folder / name)
        out.append((name, code, TOPICS[i % len(TOPICS)]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--questions", type=int, default=30)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MODELPICK_USER_SCENARIOS_DIR"] = str(tmp / "scenarios")
        folder = tmp / "docs"
        folder.mkdir()
        written = write_set(folder, args.docs, args.mb)
        mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        rng = random.Random(1)
        asked = rng.sample(written, args.questions)
        sheet = tmp / "questions.csv"
        with sheet.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "prompt", "contains", "source"])
            for name, code, topic in asked:
                number = int(name[7:10])
                w.writerow([f"q-{number}", f"What is the approval code for {topic} policy {number}?", code, name])

        from engine import retrieval
        from engine.importer import import_file
        from engine.scenarios import load_scenario

        t0 = time.perf_counter()
        sc = import_file(sheet, "bench-kb", docs_folder=folder)
        import_s = time.perf_counter() - t0
        retrieval._CACHE.clear()
        retrieval._TOKENS.clear()
        retrieval._INDEXES.clear()
        sc = load_scenario(str(sc.source_path))
        times, hits = [], 0
        for case in sc.cases:
            t = time.perf_counter()
            sel = retrieval.select(case.sources, case.prompt or "", 8000, Path(str(case.sources_dir)))
            times.append((time.perf_counter() - t) * 1000)
            hits += bool(sel.record(case.source)["source_given"])
        print(f"docs={args.docs} size_mb={mb:.1f} import_s={import_s:.1f} "
              f"retrieval_ms_first={times[0]:.0f} retrieval_ms_p50={statistics.median(times[1:] or times):.0f} "
              f"recall={hits / len(sc.cases):.2f} chunks={len(retrieval.chunks_for(sc.cases[0].sources))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
