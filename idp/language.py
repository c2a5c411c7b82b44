"""Which language a customer page speaks: Japanese, or English for those who ask.

The manual's Japanese words are the messages themselves (the msgids of
``translations/``); English is a catalog over them. For each request the
first of these that names a language we speak decides:

1. the customer's own choice: the 「English」/「日本語」 link in every page's
   header, kept in the ``idp_lang`` cookie for a year;
2. ``ui_locales`` of the request itself (/authorize, /session/end), or of
   the sign-in a site asked for that the login page continues (pending.py);
3. the browser's ``Accept-Language``;
4. Japanese.

The operator's console is Japanese only. Mails speak the language of the
request that sent them.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from flask import current_app, has_request_context, request, url_for
from flask_babel import get_locale, get_translations
from jinja2 import pass_context
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from . import pending

LANGUAGES = ("ja", "en")
DEFAULT = "ja"
COOKIE = "idp_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
# Paths whose pages are not the customer's: always Japanese.
JAPANESE_ONLY = ("/admin", "/dev/")
# Endpoints that take ui_locales themselves.
UI_LOCALES_ENDPOINTS = {"authorize.authorize", "oauth.end_session"}


def supported(tag: str | None) -> str | None:
    """The language we speak for one BCP 47 tag ("en-US" -> "en"), if any."""
    primary = (tag or "").split("-")[0].split("_")[0].lower()
    return primary if primary in LANGUAGES else None


def from_ui_locales(value: str | None) -> str | None:
    """The first language of a ``ui_locales`` list (space separated, in order
    of preference, OIDC Core 3.1.2.1) that we speak."""
    for tag in (value or "").split()[:10]:
        if language := supported(tag):
            return language
    return None


def chosen() -> str | None:
    """The language the customer picked with the header link, if any."""
    return supported(request.cookies.get(COOKIE)) if has_request_context() else None


def select() -> str:
    """Flask-Babel's locale selector: the language of this request."""
    if not has_request_context() or request.path.startswith(JAPANESE_ONLY):
        return DEFAULT
    if language := chosen():
        return language
    if language := from_ui_locales(_asked_ui_locales()):
        return language
    key = request.args.get("request") if request.endpoint == "login.login" else None
    waiting = pending.find(key)
    if waiting and (language := supported(waiting.get("locale"))):
        return language
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT)


def _asked_ui_locales() -> str | None:
    """ui_locales of a request to an endpoint that takes it, from the query
    or the form. A body too large or cut short raises again at each read:
    the page that says so reads the query only."""
    if request.endpoint not in UI_LOCALES_ENDPOINTS:
        return None
    try:
        return request.values.get("ui_locales")
    except HTTPException:
        return request.args.get("ui_locales")


def set_cookie(response, language: str) -> None:
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    response.set_cookie(COOKIE, language, max_age=COOKIE_MAX_AGE, secure=secure, httponly=True, samesite="Lax")


def same_site_path(target: str | None) -> str:
    """Where the header link returns to: a path of this site, never elsewhere."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(c in target for c in "\r\n\\"):
        return "/"
    return target


def current() -> str:
    """The language of this request's pages."""
    return str(get_locale() or DEFAULT)


def template_context() -> dict:
    """What base.html needs: the page's language and the header link to the other one."""
    if not has_request_context() or request.path.startswith(JAPANESE_ONLY):
        return {"page_language": DEFAULT}
    here = current()
    other = "en" if here == "ja" else "ja"
    back = request.full_path.rstrip("?") if request.method == "GET" else request.path
    return {"page_language": here, "other_language": other,
            "other_language_url": url_for("login.language_switch", language_tag=other, next=back),
            "gettext": _page_gettext(get_translations())}


@functools.lru_cache(maxsize=8)  # a catalog per language (and per app, in tests)
def _page_gettext(translations):
    """A page's ``_()`` and ``{% trans %}``, bound to the catalog of the
    page's language (one per language, Flask-Babel keeps them): what the
    ``gettext`` Flask-Babel gives Jinja does, without looking the catalog
    up again for each of a page's ~15 messages (~8 µs apiece). As Jinja's
    newstyle gettext: escaped where autoescaping, always %-formatted."""

    @pass_context
    def gettext(context, string, **variables):
        text = translations.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)
        return text % variables

    return gettext


def in_japanese(text) -> Markup:
    """Japanese data on a page in another language (a customer's name in kanji):
    marked as Japanese so that screen readers read it as such (WCAG 3.1.2)."""
    if current() == "ja":
        return escape(text)
    return Markup('<span lang="ja">%s</span>') % text
