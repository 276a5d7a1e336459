"""The company's own documents (PDF, Word, Markdown, text) as a scenario's context documents.

Text is extracted with pypdf (PDF) and python-docx (Word .docx: paragraphs, then tables row by
row) and saved as UTF-8 text beside the user's scenarios, in docs/<scenario id>/, where the
scenario's cases name them as `context_file`. A scanned PDF has no text layer: it is refused
with that reason rather than saved empty.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

from .safefile import UnsafeFile, read_under
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
    if len(text.encode("utf-8")) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{name}: its text is {len(text.encode('utf-8')) / 2**20:.1f} MiB, over the "
                            f"{MAX_DOCUMENT_BYTES // 2**20} MiB limit for a document")
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


MAX_UNZIPPED_XML_BYTES = 32 * 2**20  # what an Office file's XML may unpack to (images do not count)
MAX_ZIP_MEMBERS = 10_000


def check_zip(name: str, data: bytes, error=ValueError, kind: str = "an Office file") -> None:
    """Refuse an Office file (a zip) whose XML would unpack past the limit, before it is parsed:
    a few hundred KiB can hold millions of empty rows or paragraphs."""
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = z.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise error(f"{name}: not {kind} ({exc})") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise error(f"{name}: {len(members):,} parts in the file, over the limit of {MAX_ZIP_MEMBERS:,}")
    unpacked = sum(m.file_size for m in members if m.filename.endswith((".xml", ".rels")))
    if unpacked > MAX_UNZIPPED_XML_BYTES:
        raise error(f"{name}: its content unpacks to {unpacked / 2**20:.0f} MiB, over the limit of "
                    f"{MAX_UNZIPPED_XML_BYTES // 2**20} MiB (a zip bomb, or a file to split)")


def _docx(name: str, data: bytes) -> str:
    import docx

    check_zip(name, data, DocumentError, "a Word .docx file")
    try:
        doc = docx.Document(io.BytesIO(data))
    except Exception as exc:  # zipfile, lxml (a text run too large to parse), python-docx's own
        detail = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise DocumentError(f"{name}: not a readable Word .docx file ({type(exc).__name__}"
                            + (f": {detail}" if detail else "") + ")") from None
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text.strip() for cell in row.cells))
    return "\n".join(parts)


def documents_in(folder: str | Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every document in a folder, in name order: regular files only, each
    opened once without following links; a symbolic link (which could lead to any file on the
    machine, /proc/self/environ included) or a FIFO is refused by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DocumentError(f"{folder}: not a folder")
    with os.scandir(folder) as entries:
        found = sorted((e for e in entries if Path(e.name).suffix.lower() in SUFFIXES), key=lambda e: e.name)
    for entry in found:
        if entry.is_symlink():
            raise DocumentError(f"{folder / entry.name}: a symbolic link; documents are read only as regular files "
                                "inside the folder (copy the file in instead)")
    if not found:
        raise DocumentError(f"{folder}: no documents ({', '.join(SUFFIXES)}) in it")
    out = []
    for entry in found:
        try:
            out.append((entry.name, read_under(folder, entry.name, MAX_DOCUMENT_BYTES)))
        except UnsafeFile as exc:
            raise DocumentError(str(exc)) from None
    return out


def save_documents(scenario_id: str, texts: list[tuple[str, str]], written: list[Path] | None = None) -> list[str]:
    """Save documents' extracted texts (`extract_text`) in the user's scenarios folder; the
    paths, relative to that folder, for `context_file`. Every file written new is appended to
    `written`, so a caller whose later step fails can remove them."""
    folder = user_scenarios_dir() / "docs"
    target = folder / scenario_id
    if target.resolve().parent != folder.resolve():
        raise DocumentError(f"scenario id {scenario_id!r} would place documents outside {folder}")
    target.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in texts:
        stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._") or "document"
        path = target / f"{stem}.txt"
        if not path.exists() and written is not None:
            written.append(path)
        path.write_text(text, encoding="utf-8")
        out.append(f"docs/{scenario_id}/{stem}.txt")
    return out
