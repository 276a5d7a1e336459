"""A sheet of real questions (CSV, JSONL or Excel) turned into a scenario.

One row per case. Columns (only `prompt` is required):

- `prompt`; `id`, `category`, `lang` (`en`/`zh`), `system`, `context_file`, `max_tokens`;
- `source`: the document (or passage, `<document>#<n>`) that answers it, for retrieval's recall;
- `reference`: the reference answer, checked by token F1 (`f1`, pass at 0.5);
- `exact`: acceptable answers for a normalised exact match, separated by `|`;
- `number`: the expected number, optionally `15 ± 0.5` or `15 ± 2%`;
- `contains`, `contains_any`, `not_contains`: phrases separated by `|`; `regex`;
- `rubric`: a rubric for the judge model (`llm_judge`);
- `expected`, `expected_2`, … (also promptfoo's `__expected`): `type: value`, with the types
  `contains`, `icontains`, `contains-any`, `not-contains`, `regex`, `equals`, `llm-rubric`,
  `number`, `f1`; a bare value means `equals`.

A row that does not fit is reported with its row (as a spreadsheet numbers it, the header
being row 1; for JSONL the line) and column; nothing is saved until every row fits.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .scenarios import (
    MAX_CASES,
    MAX_TOKENS_LIMIT,
    SCENARIO_ID,
    Case,
    Scenario,
    ScenarioError,
    parse_scenario,
    save_scenario_text,
    user_scenarios_dir,
)

TEXT_COLUMNS = ("id", "category", "lang", "system", "context_file", "source")
LIST_COLUMNS = ("contains", "contains_any", "not_contains")
KNOWN = ("prompt", *TEXT_COLUMNS, "max_tokens", "reference", "exact", "number", *LIST_COLUMNS, "regex",
         "rubric")
EXPECTED = re.compile(r"^(__)?expected(_\d+)?$")
ASSERT_TYPES = {"contains": "contains", "icontains": "contains", "contains-any": "contains_any",
                "not-contains": "not_contains", "regex": "regex", "equals": "exact", "llm-rubric": "llm_judge",
                "number": "number", "f1": "f1"}
MAX_BYTES = 5 * 1024 * 1024
DEFAULT_WEIGHTS = {"quality": 0.6, "ttft": 0.2, "latency": 0.2}


class SheetError(ScenarioError):
    """A file that does not fit, named with its row and column."""


def read_rows(name: str, data: bytes) -> list[tuple[int, dict[str, Any]]]:
    """(row number as the user sees it, row) for every non-empty row of a CSV, JSONL or Excel file."""
    if len(data) > MAX_BYTES:
        raise SheetError(f"{name}: {len(data) / 1e6:.1f} MB is over the 5 MB limit")
    suffix = Path(name).suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return _csv_rows(name, data, "\t" if suffix == ".tsv" else None)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(name, data)
    if suffix in (".xlsx", ".xlsm"):
        return _excel_rows(name, data)
    raise SheetError(f"{name}: unknown file type {suffix or '(none)'}; give a .csv, .jsonl or .xlsx file")


def _decode(name: str, data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GB18030 (GBK)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SheetError(f"{name}: neither UTF-8 nor GB18030 text")


def _csv_rows(name: str, data: bytes, delimiter: str | None) -> list[tuple[int, dict]]:
    text = _decode(name, data)
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
        except csv.Error:
            delimiter = ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    if not reader.fieldnames:
        raise SheetError(f"{name}: no header row (the first row names the columns, e.g. prompt)")
    rows = []
    for row in reader:
        if None in row:
            raise SheetError(f"{name}: row {reader.line_num}: more cells than the header has columns")
        if any((v or "").strip() for v in row.values()):
            rows.append((reader.line_num, row))
    return rows


def _jsonl_rows(name: str, data: bytes) -> list[tuple[int, dict]]:
    rows = []
    for n, line in enumerate(_decode(name, data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SheetError(f"{name}: line {n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise SheetError(f"{name}: line {n}: a JSON object per line is needed, not {type(row).__name__}")
        rows.append((n, row))
    return rows


MAX_SHEET_ROWS = 50_000  # rows read, empty ones included; a scenario holds at most MAX_CASES cases


def _excel_rows(name: str, data: bytes) -> list[tuple[int, dict]]:
    from openpyxl import load_workbook

    from .documents import check_zip

    check_zip(name, data, SheetError, "an Excel workbook")
    try:
        sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
        # the same cells as written: a formula whose value the file does not hold is said as such
        written = load_workbook(io.BytesIO(data), read_only=True, data_only=False).worksheets[0]
    except Exception as exc:  # openpyxl raises many kinds for a file that is not a workbook
        raise SheetError(f"{name}: not an Excel workbook ({type(exc).__name__})") from None
    formulas = written.iter_rows(values_only=True)

    def cells(values: tuple) -> tuple:
        as_written = next(formulas, ()) or ()
        return tuple(Formula(f) if v is None and isinstance(f, str) and f.startswith("=") else v
                     for v, f in zip(values, (*as_written, *[None] * max(0, len(values) - len(as_written)))))
    it = (cells(values) for values in sheet.iter_rows(values_only=True))
    header = next(it, None)
    if not header or not any(header):
        raise SheetError(f"{name}: no header row (the first row names the columns, e.g. prompt)")
    columns = [str(h).strip() if h is not None else "" for h in header]
    rows = []
    for n, values in enumerate(it, start=2):
        if n > MAX_SHEET_ROWS:
            raise SheetError(f"{name}: more than {MAX_SHEET_ROWS:,} rows; a scenario holds at most {MAX_CASES:,} "
                             "cases (split the sheet)")
        row = {c: v for c, v in zip(columns, values) if c or v not in (None, "")}
        if "" in row:
            raise SheetError(f"{name}: row {n}: a value under a column without a name")
        if any(v not in (None, "") for v in row.values()):
            rows.append((n, row))
    return rows


class Formula(str):
    """A cell that holds a formula and no saved value (a workbook written by a program that does not
    compute formulas)."""


def _cell(value: Any) -> str:
    if isinstance(value, Formula):
        return ""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _split(value: str) -> list[str]:
    return [p.strip() for p in value.split("|") if p.strip()]


_TOLERANCE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(?:(?:±|\+-|\+/-)\s*(\d+(?:\.\d+)?)\s*(%)?)?\s*$")


def _number(text: str) -> dict:
    m = _TOLERANCE.match(text.replace(",", ""))
    if not m:
        raise ValueError(f"{text!r} is not a number like 15, 15 ± 0.5 or 15 ± 2%")
    value, spread, pct = float(m.group(1)), m.group(2), m.group(3)
    if spread is None:
        return {"value": value}
    return {"value": value, "tolerance": float(spread) / 100} if pct else {"value": value, "abs": float(spread)}


def _check(kind: str, text: str) -> dict:
    if kind in LIST_COLUMNS:
        return {"type": kind, "value": _split(text)}
    if kind == "exact":
        return {"type": "exact", "value": _split(text)}
    if kind == "number":
        return {"type": "number", "value": _number(text)}
    if kind in ("reference", "f1"):
        return {"type": "f1", "value": {"answer": text}}
    if kind in ("rubric", "llm_judge"):
        return {"type": "llm_judge", "value": text}
    return {"type": kind, "value": text}


def _expected(text: str) -> dict:
    head, sep, rest = text.partition(":")
    kind = head.strip().lower()
    if sep and kind in ASSERT_TYPES:
        check = _check(ASSERT_TYPES[kind], rest.strip())
        if kind == "contains":
            check["ignore_case"] = False
        return check
    return _check("exact", text)


def case_from_row(row: dict[str, Any], index: int) -> dict:
    """A case (as scenario YAML data) from the `index`-th row (its id when the sheet gives
    none: case-1, case-2, ...); ValueError naming the column."""
    formula = next(((c, v) for c, v in row.items() if isinstance(v, Formula)), None)
    if formula:
        raise ValueError(f"column {formula[0]!r}: a formula ({formula[1][:60]}) with no value saved in the file; "
                         "open the workbook in Excel or LibreOffice and save it (which stores the values), or "
                         "paste the values instead")
    unknown = [c for c in row if c not in KNOWN and not EXPECTED.match(c)]
    if unknown:
        raise ValueError(f"column {unknown[0]!r}: unknown (known: {', '.join(KNOWN)}, "
                         "expected, expected_2, ...)")
    prompt = _cell(row.get("prompt"))
    if not prompt:
        raise ValueError("column 'prompt': empty")
    case: dict[str, Any] = {"id": _cell(row.get("id")) or f"case-{index}", "category": "", "prompt": prompt}
    for col in TEXT_COLUMNS[1:]:
        if _cell(row.get(col)):
            case[col] = _cell(row.get(col))
    case["category"] = case.get("category") or "imported"
    if _cell(row.get("max_tokens")):
        given = _cell(row["max_tokens"])
        try:
            number = float(given)
            if not number.is_integer() or not 1 <= number <= MAX_TOKENS_LIMIT:
                raise ValueError
        except (ValueError, OverflowError):
            raise ValueError(f"column 'max_tokens': {given!r} is not a whole number from 1 to "
                             f"{MAX_TOKENS_LIMIT:,}") from None
        case["max_tokens"] = int(number)
    checks = []
    for col in row:
        text = _cell(row[col])
        if not text or col in ("prompt", "max_tokens", *TEXT_COLUMNS):
            continue
        try:
            checks.append(_expected(text) if EXPECTED.match(col) else _check(col, text))
        except ValueError as exc:
            raise ValueError(f"column {col!r}: {exc}") from None
    case["checks"] = checks
    try:
        Case.model_validate(case)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        column = row_column(loc, case)
        raise ValueError(f"column {column!r}: {err['msg'].removeprefix('Value error, ')}") from None
    return case


def row_column(loc: list[str], case: dict) -> str:
    """The sheet column a validation error points at."""
    if loc[:1] == ["checks"] and len(loc) > 1 and loc[1].isdigit():
        return case["checks"][int(loc[1])]["type"]
    return loc[0] if loc else "prompt"


KB_SYSTEM = {"en": "Answer only from the documents. If they do not say, reply that they do not say.",
             "zh": "只根据文档回答。如果文档中没有相关信息，请回答文档中没有提到。"}


def scenario_id_for(name: str, scenario_id: str | None = None) -> str:
    return scenario_id or re.sub(r"[^a-z0-9_-]+", "-", Path(name).stem.lower()).strip("-_") or "imported"


def scenario_yaml(name: str, data: bytes, scenario_id: str | None = None, title: str | None = None,
                  documents: dict[str, str] | None = None) -> str:
    """Scenario YAML from a sheet; SheetError naming the file, row and column. With
    `documents` (a document's file name -> its saved text, relative to the scenarios folder),
    every case is asked against all of them, or against the one its `context_file` names,
    with an answer-only-from-the-documents instruction unless the row gives a `system`."""
    rows = read_rows(name, data)
    if not rows:
        raise SheetError(f"{name}: no rows with a prompt")
    cases: list[dict] = []
    seen: dict[str, str] = {}
    for i, (n, row) in enumerate(rows, start=1):
        where = f"line {n}" if Path(name).suffix.lower() in (".jsonl", ".ndjson") else f"row {n}"
        try:
            case = case_from_row(row, i)
        except ValueError as exc:
            raise SheetError(f"{name}: {where}: {exc}") from None
        if documents:
            wanted = case.get("context_file")
            if wanted and wanted not in documents:
                raise SheetError(f"{name}: {where}: column 'context_file': {wanted!r} is not one of the documents "
                                 f"({', '.join(documents)})")
            case["context_file"] = documents[wanted] if wanted else list(documents.values())
            doc, hash_, passage = (case.get("source") or "").partition("#")
            if doc in documents:  # named as the user's file; recorded under the saved text's name
                case["source"] = documents[doc] + hash_ + passage
            case.setdefault("system", KB_SYSTEM.get(case.get("lang") or "en", KB_SYSTEM["en"]))
        if case["id"] in seen:
            raise SheetError(f"{name}: {where}: column 'id': {case['id']!r} is used again "
                             f"(first on {seen[case['id']]})")
        seen[case["id"]] = where
        cases.append(case)
    sid = scenario_id_for(name, scenario_id)
    doc = {"id": sid, "name": title or Path(name).stem, "description": f"Imported from {Path(name).name}.",
           "weights": DEFAULT_WEIGHTS, "defaults": {"max_tokens": 512, "temperature": 0.0, "seed": 42},
           "cases": cases}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def preview(name: str, data: bytes, scenario_id: str | None = None, title: str | None = None) -> Scenario:
    """The scenario a sheet gives, validated, without saving it (the dashboard's preview)."""
    return parse_scenario(scenario_yaml(name, data, scenario_id, title), name, base_dir=user_scenarios_dir())


def import_sheet(name: str, data: bytes, scenario_id: str | None = None, title: str | None = None,
                 documents: list[tuple[str, bytes]] | None = None, overwrite: bool = False,
                 on_document=None) -> Scenario:
    """Save the scenario a sheet gives, with its documents' texts; nothing is written unless
    every row and every document can be read and the id is free (or `overwrite`)."""
    from .documents import extract_text, save_documents
    from .scenarios import _scenario_file

    sid = scenario_id_for(name, scenario_id)
    if not SCENARIO_ID.fullmatch(sid):  # it names the documents' folder: checked before anything is written
        raise SheetError(f"{name}: scenario id {sid!r} must be lowercase letters, digits, '-' and '_' "
                         "(it is also a folder name)")
    scenario_yaml(name, data, sid, title)  # every row fits
    texts = []
    for i, (doc_name, doc_data) in enumerate(documents or [], start=1):
        texts.append((doc_name, extract_text(doc_name, doc_data)))
        if on_document:
            on_document(i, len(documents or []), doc_name)
    existing = _scenario_file(sid)
    if existing is not None and not (overwrite and existing.parent == user_scenarios_dir()):
        raise SheetError(f"{name}: a scenario {sid!r} exists already ({existing}); choose another id")
    written: list[Path] = []
    try:
        saved = dict(zip((n for n, _ in texts), save_documents(sid, texts, written))) if texts else None
        if saved:  # chunked once, here, for retrieval when the documents exceed a model's context
            from .retrieval import save_chunks

            folder = user_scenarios_dir() / "docs" / sid
            chunks = save_chunks([(saved[n], text) for n, text in texts], folder)
            if chunks not in written:
                written.append(chunks)
        return save_scenario_text(scenario_yaml(name, data, sid, title, saved), name, overwrite=overwrite)
    except BaseException:
        for path in written:  # nothing is left behind by an import that did not save
            path.unlink(missing_ok=True)
        raise


def import_file(path: str | Path, scenario_id: str | None = None, title: str | None = None,
                overwrite: bool = False, docs_folder: str | Path | None = None, on_document=None) -> Scenario:
    from .documents import documents_in

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SheetError(f"{path}: cannot read ({exc.strerror})") from None
    documents = documents_in(docs_folder) if docs_folder else None
    return import_sheet(path.name, data, scenario_id, title, documents, overwrite, on_document)


def import_promptfoo_upload(files: list[tuple[str, bytes]], overwrite: bool = False):
    """A promptfoo suite uploaded as files (its promptfooconfig.yaml and the files it names, side by
    side): saved as a scenario; (the scenario, the suite)."""
    import tempfile

    from .promptfoo import SuiteError, import_suite, read_suite

    configs = [n for n, _ in files if Path(n).suffix.lower() in (".yaml", ".yml") and "promptfoo" in n.lower()] \
        or [n for n, _ in files if Path(n).suffix.lower() in (".yaml", ".yml")]
    if len(configs) != 1:
        raise SuiteError("give one promptfoo config (promptfooconfig.yaml) and the files it names"
                         + (f"; got {', '.join(configs)}" if configs else ""))
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files:
            (Path(folder) / Path(name).name).write_bytes(data)
        config = Path(folder) / Path(configs[0]).name
        stem = config.stem if config.stem != "promptfooconfig" else ""
        sid = scenario_id_for(stem or read_suite(config).description or "promptfoo-suite")
        return import_suite(config, scenario_id=sid, overwrite=overwrite)
