"""Documents larger than a model's context are retrieved, not pasted: a case is given the passages that
fit, ranked by BM25 (rank_bm25) against its question, from chunks that keep headings and table rows
whole. Chinese text is split into words by jieba; other text into lowercase words.

The choice is made once per case for a run, at the smallest context among the run's models, so every
model gets the same passages; where the whole documents fit they are given whole. Chunks are made once
per document set (`chunks_for`: kept beside the documents at import, remembered per process).
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from . import cjk
from .cjk import estimate_tokens

CHUNK_TOKENS = 300  # a passage's size, about; a paragraph or table row is never split
CHUNKS_FILE = ".chunks.json"
_HEADING = re.compile(r"^(#{1,6}\s+\S.*|[^\n]{1,80}\n[=-]{3,})$", re.MULTILINE)
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$|^[^\t\n]+(\t[^\t\n]*)+$")
_CJK_RUNS = re.compile(f"([{cjk.RANGES}]+)")
_WORD = re.compile(r"[A-Za-z0-9_]+(?:['.-][A-Za-z0-9_]+)*")
_CACHE: dict[str, list[Chunk]] = {}
_TOKENS: dict[str, list[list[str]]] = {}  # per document set: each chunk's words, for the BM25 index


@dataclass(frozen=True)
class Chunk:
    id: str  # <document>#<n>
    doc: str
    heading: str
    text: str


def _blocks(text: str) -> list[tuple[str, str]]:
    """(heading, block) in order: paragraphs, with table rows kept one block each, under the last heading."""
    heading, out = "", []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip("\n")
        if not para.strip():
            continue
        lines = para.splitlines()
        if _HEADING.fullmatch(para.strip()) or (len(lines) == 1 and lines[0].lstrip().startswith("#")):
            heading = para.strip().lstrip("#").strip().splitlines()[0]
            continue
        if lines and lines[0].lstrip().startswith("#"):  # a heading line starting a paragraph
            heading, lines = lines[0].lstrip("#").strip(), lines[1:]
        rows = [ln for ln in lines if _TABLE_ROW.match(ln)]
        if rows and len(rows) == len(lines):
            header = lines[0]
            out += [(heading, header if i == 0 else f"{header}\n{row}") for i, row in enumerate(lines)
                    if not re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", row)]
        else:
            out.append((heading, "\n".join(lines)))
    return out


def chunk(doc: str, text: str, size: int = CHUNK_TOKENS) -> list[Chunk]:
    """Passages of about `size` tokens, each whole paragraphs or table rows under one heading, the
    heading repeated at its start so a passage reads on its own."""
    chunks: list[Chunk] = []
    parts: list[str] = []
    current = None

    def flush() -> None:
        if parts:
            body = "\n\n".join(parts)
            chunks.append(Chunk(f"{doc}#{len(chunks) + 1}", doc, current or "",
                                f"{current}\n\n{body}" if current else body))
            parts.clear()

    for heading, block in _blocks(text):
        if heading != current or (parts and estimate_tokens("\n\n".join([*parts, block])) > size):
            flush()
            current = heading
        parts.append(block)
    flush()
    return chunks


def tokens(text: str) -> list[str]:
    """Words for BM25: jieba's for Chinese runs, lowercase words for the rest."""
    out: list[str] = []
    for run in _CJK_RUNS.split(text):
        if not run:
            continue
        if cjk.is_cjk(run[0]):
            out += [w for w in _jieba().lcut(run) if w.strip()]
        else:
            out += [w.lower() for w in _WORD.findall(run)]
    return out


def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # not its dictionary-loading chatter on every run's console
    return jieba


def _key(documents: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for name, text in documents:
        h.update(name.encode())
        h.update(b"\0")
        h.update(text.encode())
    return h.hexdigest()


def chunks_for(documents: list[tuple[str, str]], folder: Path | None = None, key: str | None = None) -> list[Chunk]:
    """The chunks of a document set: from `folder`'s chunk file where it was made for these texts, else
    made now (and remembered for this process); `key` is the set's `_key` where the caller has it."""
    key = key or _key(documents)
    if key in _CACHE:
        return _CACHE[key]
    path = folder / CHUNKS_FILE if folder else None
    if path is not None and path.is_file():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("key") == key:
                _CACHE[key] = [Chunk(**c) for c in saved["chunks"]]
                if isinstance(saved.get("tokens"), list) and len(saved["tokens"]) == len(_CACHE[key]):
                    _TOKENS[key] = saved["tokens"]
                return _CACHE[key]
        except (OSError, ValueError, TypeError, KeyError):
            pass  # made again below
    _CACHE[key] = [c for name, text in documents for c in chunk(name, text)]
    return _CACHE[key]


def save_chunks(documents: list[tuple[str, str]], folder: Path) -> Path:
    """Chunk a document set once, at import, beside its documents, with each chunk's words."""
    path = folder / CHUNKS_FILE
    key = _key(documents)
    chunks = chunks_for(documents)
    path.write_text(json.dumps({"key": key, "chunks": [asdict(c) for c in chunks],
                                "tokens": _chunk_tokens(chunks, key)}, ensure_ascii=False), encoding="utf-8")
    return path


def _chunk_tokens(chunks: list[Chunk], key: str) -> list[list[str]]:
    if key not in _TOKENS:
        _TOKENS[key] = [tokens(c.text) or ["_"] for c in chunks]
    return _TOKENS[key]


class Index:
    """BM25 (Okapi) over a document set: rank_bm25's statistics (idf with its floor, lengths, k1, b),
    scored through postings per word, so a query costs its words' documents, not a pass over every
    chunk (the same scores as rank_bm25's `get_scores`; tested)."""

    def __init__(self, docs: list[list[str]]):
        import numpy as np
        from rank_bm25 import BM25Okapi

        self.bm25 = BM25Okapi(docs)
        self.doc_len = np.asarray(self.bm25.doc_len, dtype=float)
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for i, freqs in enumerate(self.bm25.doc_freqs):
            for word, n in freqs.items():
                ids, tfs = postings.setdefault(word, ([], []))
                ids.append(i)
                tfs.append(n)
        self.postings = {w: (np.asarray(ids), np.asarray(tfs, dtype=float)) for w, (ids, tfs) in postings.items()}

    def scores(self, query: list[str]):
        import numpy as np

        b, k1 = self.bm25.b, self.bm25.k1
        out = np.zeros(len(self.doc_len))
        for q in query:
            if q not in self.postings:
                continue
            ids, tf = self.postings[q]
            norm = k1 * (1 - b + b * self.doc_len[ids] / self.bm25.avgdl)
            out[ids] += (self.bm25.idf.get(q) or 0) * (tf * (k1 + 1) / (tf + norm))
        return out


_INDEXES: dict[str, Index] = {}


def rank(chunks: list[Chunk], question: str, key: str) -> list[int]:
    """Chunk positions, best first, by BM25 against the question; the index is built once per
    document set (`key`)."""
    import numpy as np

    index = _INDEXES.get(key)
    if index is None:
        index = _INDEXES[key] = Index(_chunk_tokens(chunks, key))
    scores = index.scores(tokens(question))
    return [int(i) for i in np.lexsort((np.arange(len(scores)), -scores))]


@dataclass
class Selection:
    """What a case is given: the whole documents, or the passages chosen, and what it cost in tokens."""
    whole: bool
    context: str
    passages: list[str]  # chunk ids, in the order given (document order)
    tokens: int
    budget: int

    def record(self, source: str | None = None) -> dict:
        out: dict = {"whole": self.whole, "passages": self.passages, "tokens": self.tokens, "budget": self.budget}
        if source:
            out["source"] = source
            out["source_given"] = self.whole or any(p == source or p.split("#")[0] == source for p in self.passages)
        return out


def select(documents: list[tuple[str, str]], question: str, budget_tokens: int,
           folder: Path | None = None) -> Selection:
    """The whole documents where they fit `budget_tokens`, else the best passages that fit, given in
    the documents' order (each headed by its document's name)."""
    whole = "\n\n".join(text for _, text in documents)
    # at least a token per 4 characters: a set far over the budget is not counted character by character
    need = estimate_tokens(whole) if len(whole) // 4 <= budget_tokens else None
    if need is not None and need <= budget_tokens:
        return Selection(True, whole, [], need, budget_tokens)
    key = _key(documents)  # hashed once per case: the set can be tens of megabytes
    chunks = chunks_for(documents, folder, key)
    chosen, used = [], 0
    for i in rank(chunks, question, key):
        cost = estimate_tokens(chunks[i].text) + 8
        if used + cost > budget_tokens:
            continue
        chosen.append(i)
        used += cost
        if budget_tokens - used < 32:
            break
    chosen.sort()
    text = "\n\n".join(f"[{chunks[i].doc}]\n{chunks[i].text}" for i in chosen)
    return Selection(False, text, [chunks[i].id for i in chosen], estimate_tokens(text), budget_tokens)
