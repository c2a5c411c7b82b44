"""iTSCOM ID: the OpenID Connect provider. ``create_app()`` builds the app."""

from __future__ import annotations

import gc
from datetime import datetime
from pathlib import Path

import click
from flask import Flask, send_from_directory
from flask_babel import Babel, gettext

from . import config
from .security.clock import JAPAN

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None, clock=None) -> Flask:
    """Build the OP. ``test_config`` overrides settings; ``clock`` replaces time."""
    app = Flask(
        __name__,
        instance_path=str(PROJECT_ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
    )
    try:
        config.load(app, test_config)
    except config.ConfigError as error:
        raise SystemExit(f"idp: configuration error: {error}") from None

    from . import cli, errors, language, ops, sessions
    from .account_settings.views import bp as account_settings_bp
    from .admin.views import bp as admin_bp
    from .cache import Cache
    from .extensions import bound_database_waits, csrf, db, init_migrations, ping_idle_connections
    from .login.views import bp as login_bp
    from .mail.transports import make_transport
    from .oauth import backchannel
    from .oauth.authorize import bp as authorize_bp
    from .oauth.documents import PublicDocuments
    from .oauth.lean import LeanEndpoints
    from .oauth.server import config_oauth
    from .oauth.views import bp as oauth_bp
    from .recovery.views import bp as recovery_bp
    from .registration.views import bp as registration_bp
    from .security import headers
    from .security.clock import SystemClock
    from .security.throttle import make_counters

    # Bad input Werkzeug would fail on before any hook of ours runs (errors.py).
    app.request_class = errors.Request
    app.url_map.converters["int"] = errors.DatabaseId
    app.wsgi_app = LeanEndpoints(PublicDocuments(app.wsgi_app, app), app)
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    db.init_app(app)
    bound_database_waits(app)
    ping_idle_connections(app)
    if app.config.get("MIGRATIONS") or click.get_current_context(silent=True) is not None:
        init_migrations(app, str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    # WTForms' own messages (a field over its length) stay as they were, not
    # Flask-WTF's Japanese catalog of them: the Japanese pages do not change.
    app.config.setdefault("WTF_I18N_ENABLED", False)
    Babel(app, locale_selector=language.select, default_locale=language.DEFAULT,
          default_translation_directories=str(PROJECT_ROOT / "translations"))
    app.context_processor(language.template_context)
    app.add_template_filter(language.in_japanese, "ja")
    app.add_template_filter(gettext, "translated")  # a fixed text kept in the database (secret questions)
    app.extensions["idp.clock"] = clock or SystemClock()
    app.extensions["idp.counters"] = make_counters(app.config)
    app.extensions["idp.mail"] = make_transport(app.config["MAIL_URL"])
    # This app's caches (idp/cache.py says what each keeps, and for how long).
    app.extensions["idp.clients"] = Cache(app.config["CLIENT_CACHE_SECONDS"], maxsize=10_000)  # Client.lookup
    app.extensions["idp.origins"] = Cache(app.config["CLIENT_CACHE_SECONDS"])  # Client.origins
    app.extensions["idp.keys"] = Cache(app.config["KEY_CACHE_SECONDS"])  # keys.keyring
    app.extensions["idp.discovery"] = Cache()  # oauth.discovery.discovery_body
    app.extensions["idp.qr"] = Cache(maxsize=len(language.LANGUAGES))  # the login page's QR code
    app.extensions["idp.fernets"] = Cache(maxsize=8)  # security.sealed.derived_fernet, one per purpose
    backchannel.init_app(app)
    config_oauth(app)

    for blueprint in (login_bp, authorize_bp, oauth_bp, registration_bp, recovery_bp, account_settings_bp, admin_bp):
        app.register_blueprint(blueprint)
    if app.config["ENV"] == "development" and not app.config["MAIL_URL"]:
        from .mail.dev import bp as devmail_bp

        app.register_blueprint(devmail_bp)
    app.after_request(sessions.write_cookie)
    app.add_template_filter(_datetime, "datetime")
    app.add_url_rule("/favicon.ico", "favicon", _favicon)
    headers.init_app(app)
    ops.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    if test_config is None:
        # An app built to serve (a server's worker, the CLI): what exists now
        # lives as long as the process, so the garbage collector's full
        # passes need not scan it again and again (~150,000 objects, ~50 ms
        # a pass). Tests build hundreds of apps in one process and keep
        # collecting them.
        gc.freeze()
    return app


def _favicon():
    """Browsers ask every site for /favicon.ico: the icon, not a 404 per page view."""
    return send_from_directory(Path(__file__).parent / "static", "favicon.ico", max_age=7 * 24 * 3600)


def _datetime(epoch: int) -> str:
    """Epoch seconds as Japan time, for customer pages."""
    return datetime.fromtimestamp(epoch, JAPAN).strftime(gettext("%Y年%m月%d日 %H:%M"))
