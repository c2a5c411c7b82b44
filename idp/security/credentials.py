"""The manual's character rules for iTSCOM IDs and passwords (p.14), plus
NIST 800-63B's blocklist: each function returns every rule a value breaks,
as the sentence shown next to the field (Japanese, or the page's language)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from flask_babel import gettext

LOGIN_ID_CHARS = re.compile(r"^[A-Za-z0-9@_.\-]*$")
LOGIN_ID_FORM = re.compile(r"^[A-Za-z0-9_.\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")
PASSWORD_CHARS = re.compile(r"^[A-Za-z0-9%+./:=@^_\-]*$")


def login_id_problems(login_id: str) -> list[str]:
    problems = []
    if not 4 <= len(login_id) <= 100:
        problems.append(gettext("iTSCOM IDは4～100文字で入力してください。"))
    if not LOGIN_ID_CHARS.match(login_id):
        problems.append(gettext("iTSCOM IDに使用できるのは半角英数字と「@」「_」「-」「.」です。"))
    elif not LOGIN_ID_FORM.match(login_id):
        problems.append(gettext("iTSCOM IDはメールアドレス形式で入力してください。"))
    return problems


def password_problems(password: str, login_id: str = "") -> list[str]:
    problems = []
    if not 6 <= len(password) <= 32:
        problems.append(gettext("パスワードは6～32文字で入力してください。"))
    if not PASSWORD_CHARS.match(password):
        problems.append(gettext("パスワードに使用できるのは半角英数字と「%」「+」「.」「/」「:」「=」「@」「^」「_」「-」です。"))
    if login_id and password.lower() == login_id.lower():
        problems.append(gettext("iTSCOM IDと同じパスワードは使用できません。"))
    elif password.lower() in common_passwords():
        problems.append(gettext("このパスワードは推測されやすいため使用できません。"))
    return problems


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("idp.security").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())
