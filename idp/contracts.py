"""Contracts from the billing system: parsing, normalising and importing its CSV.

An import is all or nothing: every row is checked first, and any bad row
leaves the database as it was; every bad row is reported with its line number.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass

import jaconv

from .extensions import db
from .models import Contract
from .security.clock import now

COLUMNS = [
    "customer_number",
    "name_kanji",
    "name_kana",
    "phones",
    "bank_last4",
    "card_last4",
    "stb_ids",
    "contact_emails",
    "additional_auth",
]
# A kana key: full-width katakana letters and ー, nothing else.
KANA_KEY = re.compile(r"^[\u30a1-\u30fa\u30fc]+$")
# Between names, or inside foreign ones: spaces, 中黒 (・, half-width ･), dots, ＝.
NAME_SEPARATORS = re.compile(r"[\s\u30fb\u00b7\u2027\u2022=\u30a0.,\u3001]")
# Dashes that stand for the long vowel mark in a typed or exported name.
DASHES = re.compile(r"[-\u2010-\u2015\u2212\uff0d\uff70]")
# Small kana jaconv leaves alone: ヮ and the Ainu small kana of U+31F0–U+31FF.
MORE_SMALL_KANA = str.maketrans("ヮㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ", "ワクシストヌハヒフヘホムラリルレロ")
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
# What may stand between the digits of a typed number (after NFKC, which
# makes full-width digits, "－", "（）" and the ideographic space ASCII):
# every dash a Japanese keyboard or IME produces (‐ ‑ ‒ – — ― − ー ｰ and the
# ASCII hyphen), spaces and parentheses.
NUMBER_SEPARATORS = re.compile(r"[\s()\-\u2010-\u2015\u2212\u30fc]")

# The formats of what identifies a contract (SPEC §2), in the normalised
# forms below; import and the registration forms check against these.
CUSTOMER_NUMBER = re.compile(r"[0-9]{10}")
LAST4 = re.compile(r"[0-9]{4}")
STB_ID = re.compile(r"[0-9A-F]{12}")
PHONE = re.compile(r"0[0-9]{9,10}")


@dataclass(frozen=True)
class ImportProblem:
    """One bad row. ``rule`` names what it breaks: a column, "header",
    "columns", or "repeat" (of the customer number first seen on line
    ``first``); ``message`` says it in English for the CLI, and the console
    words ``rule`` in Japanese (admin/words.py)."""

    line: int
    rule: str
    message: str
    first: int = 0


# An import stops checking after this many bad rows: enough to fix a file by.
MAX_REPORTED = 100


class ContractImportError(Exception):
    """One or more bad rows, each an ImportProblem: parse_csv reports every
    bad row of a file, up to MAX_REPORTED."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"line {p.line}: {p.message}" for p in self.problems))


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int


def kana_key(name: str) -> str:
    """The one form in which a contract holder's kana name is compared.

    Billing exports and customers write the same name differently: full or
    half width, hiragana, with or without spaces or 中黒 between names
    ("ｽﾐｽ･ｼﾞｮﾝ", "スミス・ジョン", "すみす じょん"), iteration marks
    ("サヽキ"), and small kana where an older system had only large ones
    ("キャ" / "ｷﾔ"). All of them map to one key ("スミスジヨン"); import and
    every form use this function and nothing else. A name that is not kana
    gives a key that ``is_kana_key`` refuses.
    """
    # Spacing voiced marks (゛゜) become combining ones, so that NFKC joins them.
    text = name.replace("\u309b", "\u3099").replace("\u309c", "\u309a")
    text = jaconv.hira2kata(jaconv.normalize(text, "NFKC"))
    text = DASHES.sub("ー", NAME_SEPARATORS.sub("", text))
    text = _expand_iteration_marks(text)
    return jaconv.enlarge_smallkana(text).translate(MORE_SMALL_KANA)


def is_kana_key(key: str) -> bool:
    return len(key) <= 100 and bool(KANA_KEY.match(key))


def _expand_iteration_marks(text: str) -> str:
    """ヽ repeats the kana before it, ヾ repeats it voiced ("イスヾ" -> "イスズ")."""
    out: list[str] = []
    for char in text:
        if char in "\u30fd\u30fe" and out:
            base = unicodedata.normalize("NFD", out[-1])[0]
            char = unicodedata.normalize("NFC", base + ("\u3099" if char == "\u30fe" else ""))
        out.append(char)
    return "".join(out)


def normalise_stb_id(value: str) -> str:
    """STB / Hit pot IDs: drop "-", ":" and spaces, upper-case ("00:a0:de…" -> "00A0DE…")."""
    return NUMBER_SEPARATORS.sub("", unicodedata.normalize("NFKC", value).replace(":", "")).upper()


def normalise_phone(value: str) -> str:
    """A phone number as typed or exported, as its digits: full-width digits,
    any dash, spaces and parentheses are tolerated ("（０４４）９８７－６５４３"
    -> "0449876543"). Import and every form compare phones in this form; what
    is left besides digits makes ``PHONE`` refuse it."""
    return normalise_number(value)


def normalise_number(value: str) -> str:
    """Any number a customer types (phone, お客さま番号, 下4桁): NFKC, separators dropped."""
    return NUMBER_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))


def parse_csv(text: str) -> list[dict]:
    """Rows of a billing export as Contract fields; ContractImportError
    names every bad row (up to MAX_REPORTED), so nothing is imported."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames != COLUMNS:
        raise ContractImportError([ImportProblem(1, "header", f"the header must be: {','.join(COLUMNS)}")])
    rows, seen, problems = [], {}, []
    for row in reader:
        line = reader.line_num
        try:
            if None in row or None in row.values():
                raise ContractImportError([ImportProblem(line, "columns", f"expected {len(COLUMNS)} columns")])
            fields = _parse_row(row, line)
            first = seen.get(fields["customer_number"])
            if first:
                raise ContractImportError([ImportProblem(line, "repeat", f"customer_number repeats line {first}",
                                                         first)])
        except ContractImportError as error:
            problems.extend(error.problems)
            if len(problems) >= MAX_REPORTED:
                break
            continue
        seen[fields["customer_number"]] = line
        rows.append(fields)
    if problems:
        raise ContractImportError(problems)
    return rows


def import_contracts(text: str) -> ImportReport:
    """Upsert every row of a billing CSV by customer number; the caller
    commits (with its audit row). ContractImportError names every bad row."""
    return upsert_contracts(parse_csv(text))


def upsert_contracts(rows: list[dict]) -> ImportReport:
    """Upsert rows parse_csv() returned, by customer number; the caller commits."""
    existing = {
        c.customer_number: c
        for c in db.session.scalars(
            db.select(Contract).where(Contract.customer_number.in_([r["customer_number"] for r in rows]))
        )
    }
    t = now()
    created = 0
    for fields in rows:
        contract = existing.get(fields["customer_number"])
        if contract is None:
            contract = Contract()
            db.session.add(contract)
            created += 1
        for name, value in fields.items():
            setattr(contract, name, value)
        contract.imported_at = t
    return ImportReport(created=created, updated=len(rows) - created)


def _parse_row(row: dict, line: int) -> dict:
    def fail(column: str, message: str):
        raise ContractImportError([ImportProblem(line, column, message)])

    values = {k: (v or "").strip() for k, v in row.items()}
    if not CUSTOMER_NUMBER.fullmatch(values["customer_number"]):
        fail("customer_number", "customer_number must be 10 digits")
    if not values["name_kanji"] or len(values["name_kanji"]) > 100:
        fail("name_kanji", "name_kanji must be 1-100 characters")
    key = kana_key(values["name_kana"])
    if not is_kana_key(key) or len(values["name_kana"]) > 100:
        fail("name_kana", "name_kana must be katakana")
    phones = [normalise_phone(p) for p in _split(values["phones"])]
    if not phones or not all(PHONE.fullmatch(p) for p in phones):
        fail("phones", "phones must be ;-separated numbers of 10-11 digits starting with 0")
    for column in ("bank_last4", "card_last4"):
        if values[column] and not LAST4.fullmatch(values[column]):
            fail(column, f"{column} must be 4 digits or empty")
    stb_ids = [normalise_stb_id(s) for s in _split(values["stb_ids"])]
    if not all(STB_ID.fullmatch(s) for s in stb_ids):
        fail("stb_ids", "stb_ids must be 12 hexadecimal characters each")
    emails = _split(values["contact_emails"])
    if not all(EMAIL.fullmatch(e) and len(e) <= 254 for e in emails):
        fail("contact_emails", "contact_emails must be ;-separated e-mail addresses")
    if values["additional_auth"] not in ("true", "false"):
        fail("additional_auth", "additional_auth must be true or false")
    return {
        "customer_number": values["customer_number"],
        "name_kanji": values["name_kanji"],
        "name_kana": values["name_kana"],
        "kana_key": key,
        "phones": phones,
        "bank_last4": values["bank_last4"] or None,
        "card_last4": values["card_last4"] or None,
        "stb_ids": stb_ids,
        "contact_emails": emails,
        "additional_auth": values["additional_auth"] == "true",
    }


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(";") if part.strip()]
