"""The English catalogs (README, "Languages"): the compiled .mo that the sites
load is the .po that people edit, and every text the code and templates mark
has an English translation with the same placeholders."""

from __future__ import annotations

import gettext
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from .english import JAPANESE

ROOT = Path(__file__).resolve().parents[1]
# (mapping file, catalog directory): the OP's, and the relying parties'.
CATALOGS = [("babel.cfg", "translations"), ("sites/babel.cfg", "sites/translations")]
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "lazy_ngettext": (1, 2)}


def catalog(directory: str):
    with open(ROOT / directory / "en/LC_MESSAGES/messages.po", "rb") as po:
        return read_po(po, locale="en")


def marked_texts(mapping: str) -> set:
    with open(ROOT / mapping) as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    return {message for _, _, message, _, _ in extract_from_dir(ROOT, method_map, options_map, KEYWORDS)
            if message}


@pytest.mark.parametrize("mapping, directory", CATALOGS)
def test_the_compiled_catalog_is_the_edited_one(mapping, directory):
    compiled = BytesIO()
    write_mo(compiled, catalog(directory))
    committed = (ROOT / directory / "en/LC_MESSAGES/messages.mo").read_bytes()
    expected = gettext.GNUTranslations(BytesIO(compiled.getvalue()))._catalog
    actual = gettext.GNUTranslations(BytesIO(committed))._catalog
    assert actual == expected, f"run: pybabel compile -d {directory}"


@pytest.mark.parametrize("mapping, directory", CATALOGS)
def test_every_marked_text_has_an_english_translation(mapping, directory):
    po = catalog(directory)
    marked = {m[0] if isinstance(m, tuple) else m for m in marked_texts(mapping)}
    entries = {m.id[0] if isinstance(m.id, tuple) else m.id: m for m in po if m.id}
    missing = sorted(marked - set(entries))
    assert not missing, f"not in {directory} (pybabel extract, then update): {missing}"
    unused = sorted(set(entries) - marked)
    assert not unused, f"in {directory} but no longer in the code: {unused}"
    for text, entry in entries.items():
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        assert all(strings) and not entry.fuzzy, f"untranslated: {text}"
        assert not any(JAPANESE.search(s) for s in strings), f"Japanese left in the English of: {text}"
    problems = [(m.id, errors) for m, errors in po.check()]
    assert not problems, problems
