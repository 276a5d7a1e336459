"""Text that is not ours (case ids, model specs, server errors, model answers, file names),
made inert for where it is shown: Markdown (the dashboard and the Markdown summary), code
spans and fences that cannot be closed from inside, and CSV cells a spreadsheet will not run
as formulas. HTML escaping lives with the HTML writers (`html.escape`)."""
from __future__ import annotations

import re

_MD_PUNCT = re.compile(r"([\\`*_\[\]<>!|~$&])")  # inline: images, links, emphasis, code, HTML, tables, math
# what makes a line a heading, a quote, a list item, a rule or a setext underline
_MD_LINE_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|>|[-+](?=\s|$)|\d{1,9}[.)](?=\s|$)|[=-]+\s*$)",
                            re.MULTILINE)


class Markdown(str):
    """Markdown that we wrote (a code span of a spec, bold labels): shown as it is."""


def markdown_text(value) -> Markdown:
    """`value` as literal text inside Markdown: every ASCII punctuation mark that could start
    an image, a link, emphasis, a heading, a list, a table, a directive (`:red[...]`) or math is
    backslash-escaped, so `![t](http://host/track)` shows as written and the
    browser fetches nothing; `<` and `&` are escaped the same way, so no HTML or entity survives."""
    if isinstance(value, Markdown):
        return value
    escaped = _MD_PUNCT.sub(r"\\\1", str(value))
    return Markdown(_MD_LINE_START.sub(_escape_marker, escaped))


_URLISH = re.compile(r"\S*://\S*")


def prose_text(value) -> Markdown:
    """Text that is not ours, as `markdown_text`, with every token holding a URL (a served model's spec)
    set in a code span, so no renderer turns it into a link."""
    text = str(value)
    parts, last = [], 0
    for m in _URLISH.finditer(text):
        parts += [markdown_text(text[last:m.start()]), code_span(m.group().rstrip(".,;)）"))]
        tail = m.group()[len(m.group().rstrip(".,;)）")):]
        parts.append(markdown_text(tail))
        last = m.end()
    parts.append(markdown_text(text[last:]))
    return Markdown("".join(parts))


def _escape_marker(m: re.Match) -> str:
    marker = m.group(2)
    digits = len(marker) - len(marker.lstrip("0123456789"))  # "12." is escaped as "12\."
    return m.group(1) + marker[:digits] + "\\" + marker[digits:]


def code_span(value) -> Markdown:
    """`value` in a code span on one line: backticks and line breaks removed, so the span can
    neither be closed early nor broken into paragraphs by a blank line."""
    flat = " ".join(str(value).replace("`", "'").split())
    return Markdown(f"`{flat}`" if flat else "")


def fence(value, info: str = "text") -> str:
    """`value` in a fenced block whose fence is longer than any run of backticks inside it."""
    text = str(value)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    bar = "`" * max(3, longest + 1)
    return f"{bar}{info}\n{text}\n{bar}"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value):
    """A cell a spreadsheet shows as text: one that starts like a formula (`=HYPERLINK(...)`,
    `@SUM(1+1)`, `+1+1`, `-2+3`, a tab or a line break) gets a leading apostrophe, as OWASP's
    CSV-injection rule advises. Numbers are left as numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
