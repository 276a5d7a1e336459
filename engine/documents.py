"""The company's own documents (PDF, Word, Markdown, text) as a scenario's context documents.

Text is extracted with pypdf (PDF) and python-docx (Word .docx: paragraphs, then tables row by
row) and saved as UTF-8 text beside the user's scenarios, in docs/<scenario id>/, where the
scenario's cases name them as `context_file`. A scanned PDF has no text layer: it is refused
with that reason rather than saved empty.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from .scenarios import MAX_DOCUMENT_BYTES, ScenarioError, user_scenarios_dir

SUFFIXES = (".pdf", ".docx", ".md", ".markdown", ".txt")


class DocumentError(ScenarioError):
    """A document that cannot be read, named."""


def extract_text(name: str, data: bytes) -> str:
    suffix = Path(name).suffix.lower()
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{name}: {len(data) / 2**20:.1f} MiB is over the "
                            f"{MAX_DOCUMENT_BYTES // 2**20} MiB limit for a document")
    if suffix == ".pdf":
        text = _pdf(name, data)
    elif suffix == ".docx":
        text = _docx(name, data)
    elif suffix in (".md", ".markdown", ".txt"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise DocumentError(f"{name}: not UTF-8 text") from None
    else:
        raise DocumentError(f"{name}: unknown document type {suffix or '(none)'} "
                            f"(known: {', '.join(SUFFIXES)})")
    text = re.sub(r"[ \t]+\n", "\n", text).strip()
    if not text:
        raise DocumentError(f"{name}: no text in it" + (" (a scanned PDF has no text layer: run OCR first)"
                                                        if suffix == ".pdf" else ""))
    return text + "\n"


def _pdf(name: str, data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError(f"{name}: the PDF is encrypted; save an unprotected copy")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except (PdfReadError, ValueError, KeyError) as exc:
        raise DocumentError(f"{name}: not a readable PDF ({exc})") from None


def _docx(name: str, data: bytes) -> str:
    import zipfile

    import docx

    try:
        doc = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DocumentError(f"{name}: not a Word .docx file ({type(exc).__name__})") from None
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(parts)


def documents_in(folder: str | Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every document in a folder, in name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DocumentError(f"{folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    if not found:
        raise DocumentError(f"{folder}: no documents ({', '.join(SUFFIXES)}) in it")
    return [(p.name, p.read_bytes()) for p in found]


def save_documents(scenario_id: str, texts: list[tuple[str, str]]) -> list[str]:
    """Save documents' extracted texts (`extract_text`) in the user's scenarios folder; the
    paths, relative to that folder, for `context_file`."""
    target = user_scenarios_dir() / "docs" / scenario_id
    target.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in texts:
        stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._") or "document"
        (target / f"{stem}.txt").write_text(text, encoding="utf-8")
        out.append(f"docs/{scenario_id}/{stem}.txt")
    return out
