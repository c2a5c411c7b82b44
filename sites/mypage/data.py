"""My Page's own store (SQLite): bills, services and notices per customer number.

Demo data is seeded relative to the current month, so that customer
2005128462 always owes 16,338円 for the latest month.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from flask_babel import gettext

from ..rpkit import N_, get_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS bills (
    customer_number TEXT NOT NULL, month TEXT NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (customer_number, month)
);
CREATE TABLE IF NOT EXISTS services (
    customer_number TEXT NOT NULL, name TEXT NOT NULL, detail TEXT NOT NULL, since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
    customer_number TEXT, important INTEGER NOT NULL, posted TEXT NOT NULL, title TEXT NOT NULL
);
"""

# Latest month first.
DEMO_BILLS = {
    "2005128462": [16338, 16338, 15980, 16120, 16338, 15500],
    "2005128463": [9878, 9878, 9878, 10230, 9878, 9878],
    "2005128464": [12540, 12100, 12540, 12540, 11980, 12540],
    "2005128466": [5280, 5280, 5280, 5280, 5280, 5280],
}
# Names and titles in Japanese, as stored; pages show them translated (N_ marks them for the catalog).
DEMO_SERVICES = {
    "2005128462": [
        (N_("iTSCOM テレビ スタンダード"), N_("セットトップボックス 1台"), "2019-04"),
        (N_("かっとびメガ 1G"), N_("インターネット 1Gbps"), "2019-04"),
        (N_("iTSCOM でんわ"), "03-1234-5678", "2020-10"),
    ],
    "2005128463": [(N_("かっとびメガ 320"), N_("インターネット 320Mbps"), "2021-06")],
    "2005128464": [(N_("iTSCOM テレビ ベーシック"), N_("セットトップボックス 2台"), "2018-01"),
                   (N_("かっとびワンギガ"), N_("インターネット 1Gbps"), "2022-03")],
}
DEMO_NOTICES = [
    (None, 1, "2026-11-20", N_("【重要】年末年始の窓口営業についてのお知らせ")),
    ("2005128462", 1, "2026-11-10", N_("【重要】ご利用機器の交換のお願い（対象のお客さま）")),
    (None, 0, "2026-11-15", N_("マイページのメンテナンスのお知らせ")),
    (None, 0, "2026-11-01", N_("新チャンネル追加のお知らせ")),
    (None, 0, "2026-10-20", N_("料金明細のWeb確認が便利になりました")),
]


def months_back(count: int, today: date | None = None) -> list[str]:
    today = today or date.today()
    year, month = today.year, today.month
    result = []
    for _ in range(count):
        result.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return result


def seed(path: str) -> None:
    """Demo data, idempotent; the latest month is the current one."""
    with sqlite3.connect(path) as conn:
        for customer, amounts in DEMO_BILLS.items():
            for month, amount in zip(months_back(len(amounts)), amounts, strict=True):
                conn.execute("INSERT OR IGNORE INTO bills VALUES (?, ?, ?)", (customer, month, amount))
        if conn.execute("SELECT COUNT(*) FROM services").fetchone()[0] == 0:
            for customer, rows in DEMO_SERVICES.items():
                conn.executemany("INSERT INTO services VALUES (?, ?, ?, ?)", [(customer, *r) for r in rows])
        if conn.execute("SELECT COUNT(*) FROM notices").fetchone()[0] == 0:
            conn.executemany("INSERT INTO notices VALUES (?, ?, ?, ?)", DEMO_NOTICES)


def bills(customer: str | None) -> list[dict]:
    rows = get_db().execute(
        "SELECT month, amount FROM bills WHERE customer_number = ? ORDER BY month DESC LIMIT 12", (customer,)
    ).fetchall()
    return [{"month": _month_label(r["month"]), "amount": r["amount"]} for r in rows]


def latest_bill(customer: str | None) -> dict | None:
    found = bills(customer)
    return found[0] if found else None


def services(customer: str | None) -> list[sqlite3.Row]:
    return get_db().execute(
        "SELECT name, detail, since FROM services WHERE customer_number = ? ORDER BY since", (customer,)
    ).fetchall()


def notices(customer: str | None, important: bool) -> list[sqlite3.Row]:
    return get_db().execute(
        "SELECT posted, title FROM notices WHERE important = ? AND (customer_number IS NULL OR customer_number = ?)"
        " ORDER BY posted DESC",
        (int(important), customer),
    ).fetchall()


def _month_label(month: str) -> str:
    year, mon = month.split("-")
    return gettext("%(year)d年%(month)d月", year=int(year), month=int(mon))
