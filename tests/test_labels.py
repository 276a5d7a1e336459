"""Every label the code names exists in both languages: a scan of pages/ and engine/ for the keys
handed to the label functions (tr, t, L, Msg, labeller patterns) finds none missing."""
import re

from engine.i18n import TEXT
from tests.conftest import ROOT

# tr("key"...), t("key"...), L("key"...), Msg("key"...), say-able messages; a key is lower_snake_case
CALL = re.compile(r"""\b(?:tr|t|L|Msg)\(\s*f?["']([a-z][a-z0-9_]*(?:\{[^}]*\}[a-z0-9_]*)*)["']""")
PATTERN = re.compile(r"""labeller\(\s*["']([a-z0-9_]*)\{\}([a-z0-9_]*)["']""")


def _sources():
    for folder in ("engine", "pages"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path, path.read_text(encoding="utf-8")
    yield ROOT / "Home.py", (ROOT / "Home.py").read_text(encoding="utf-8")


def test_every_literal_label_key_exists_in_english_and_chinese():
    missing, seen = [], 0
    for path, source in _sources():
        for m in CALL.finditer(source):
            key = m.group(1)
            if "{" in key or key.endswith("_"):  # f"crit_{c}", "cache_" + mode: a family of keys
                prefix = key.split("{", 1)[0]
                family = [k for k in TEXT if k.startswith(prefix)]
                if not family:
                    missing.append(f"{path.relative_to(ROOT)}: no label starts with {prefix!r}")
                continue
            seen += 1
            if key not in TEXT:
                missing.append(f"{path.relative_to(ROOT)}: {key!r}")
    assert seen > 300  # the scan reads the calls, it is not an empty loop
    assert not missing, "\n".join(missing)


def test_every_label_has_both_languages_and_the_same_placeholders():
    bad = []
    for key, (en, zh) in TEXT.items():
        if not en.strip() or not zh.strip():
            bad.append(f"{key}: empty")
        if set(re.findall(r"\{(\w+)", en)) != set(re.findall(r"\{(\w+)", zh)):
            bad.append(f"{key}: placeholders differ")
    assert not bad, "\n".join(bad)


def test_label_families_cover_what_the_code_asks_of_them():
    from engine.recommend import CRITERION_INFO
    from engine.scenarios import CRITERIA

    assert {f"crit_{c}" for c in CRITERIA} <= set(TEXT)
    assert set(CRITERION_INFO) == set(CRITERIA)
    from engine.checks import CHECKS

    assert set(CHECKS) <= set(TEXT)  # every check type has its name in words
