"""Every setting of the OP: its default, what it means, and how it is checked.

Settings come from the environment with the prefix ``IDP_`` (Flask's
``from_prefixed_env``), so ``IDP_ISSUER`` sets ``ISSUER``. Values that Flask
can parse as JSON (numbers, booleans) arrive typed; the rest are strings.

The embedded default is a single node on SQLite under ``instance/`` with a
secret key generated on first start. ``IDP_ENV=production`` refuses to start
without an explicit https issuer, secret key and database.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULTS = {
    # "development" or "production"; production refuses embedded defaults.
    "ENV": "development",
    # The issuer identifier: scheme, host, optional port and path, no query.
    "ISSUER": "http://127.0.0.1:5000",
    # SQLAlchemy URL. Default: SQLite file under instance/.
    "DATABASE_URL": None,
    # Signs the Flask session cookie (CSRF tokens, flow state).
    "SECRET_KEY": None,
    # Derives the subject a pairwise client sees (OIDC Core 8.1: HMAC-SHA-256
    # of the client's sector identifier and the account, claims.subject_for).
    # Every node must have the same one, and it must never change: a new
    # secret gives every customer a new sub at every pairwise client, which
    # then no longer recognises them. Independent of the signing keys, so key
    # rotation leaves subjects alone. At least 32 characters; development
    # generates one under instance/ (like SECRET_KEY), production requires it.
    "PAIRWISE_SECRET": None,
    # RFC 9126 5: every client must push its authorization requests (POST
    # /par); /authorize then takes only a request_uri. Off, only clients
    # registered with require_pushed_authorization_requests must.
    "REQUIRE_PAR": False,
    # smtp://host:port (smtp+starttls://, smtps://, user:pass@ allowed).
    # Unset: mails go to the development outbox under instance/.
    "MAIL_URL": None,
    # redis://host:port/db for the throttle counters and the used DPoP
    # proofs (oauth/dpop.py). Unset: they live in the database (tables
    # throttle_counters, used_dpop_proofs), which every worker and node
    # shares too; Redis takes those writes off the database.
    "REDIS_URL": None,
    # How long one Redis call may take (connect or answer) before the counts
    # go to the database; then Redis is left alone for REDIS_BREAKER_RESET
    # seconds (a circuit breaker per process), so that a silent Redis costs
    # one timeout per that many seconds, not one per request.
    "REDIS_TIMEOUT_MS": 500,
    "REDIS_BREAKER_RESET": 30,
    # The address customers use for My Page; encoded in the login page's QR.
    "MYPAGE_URL": "https://mypage.itscom.net/",
    # The home site (My Page): where a customer lands after signing in on the
    # OP's own login page with no site asking (a bookmark of /login, the
    # login after registering or recovering), and where every page's header
    # and the account page lead. An absolute http(s) URL; https in production.
    "HOME_URL": "https://mypage.itscom.net/",
    # Links of the login page (manual p.2) to the operator's own web site.
    "FAQ_URL": "https://www.itscom.co.jp/support/faq/",
    "SITE_POLICY_URL": "https://www.itscom.co.jp/info/site_policy/",
    "GUIDE_URL": "https://www.itscom.co.jp/support/mypage/",
    "ACCOUNT_LOGIN_URL": "https://www.itscom.co.jp/support/account/",
    # The operator's contact page: every 「こちらからお問い合わせください」 of
    # the customer pages and the contact form named in every mail lead there
    # (default: the form the manual's mails name). An absolute http(s) URL.
    "CONTACT_URL": "http://www.itscom.net/info/contact/index.html",
    # Lifetimes in seconds.
    "AUTHORIZATION_CODE_LIFETIME": 60,
    "ACCESS_TOKEN_LIFETIME": 3600,
    "ID_TOKEN_LIFETIME": 3600,
    "REFRESH_TOKEN_IDLE_LIFETIME": 30 * 24 * 3600,
    "REFRESH_TOKEN_ABSOLUTE_LIFETIME": 90 * 24 * 3600,
    "SESSION_LIFETIME": 12 * 3600,
    # Login throttling: free failures before delays start, the window they
    # are counted in, and the longest delay.
    "LOGIN_FREE_FAILURES_PER_ACCOUNT": 5,
    "LOGIN_FREE_FAILURES_PER_ADDRESS": 20,
    "LOGIN_THROTTLE_WINDOW": 15 * 60,
    "LOGIN_MAX_DELAY": 15 * 60,
    # Device cookies (OWASP "Slow Down Online Guessing Attacks with Device
    # Cookies"): a browser that signed in to an ID before presents its cookie
    # and is then held only to that cookie's own budget, not to the budgets
    # above, which strangers can spend. Free failures per device cookie (same
    # window and delays), the cookie's lifetime, and how many IDs one browser
    # keeps a cookie for.
    "LOGIN_FREE_FAILURES_PER_DEVICE": 5,
    "LOGIN_DEVICE_COOKIE_LIFETIME": 365 * 24 * 3600,
    "LOGIN_DEVICE_COOKIES_PER_BROWSER": 5,
    # The second factor (idp/second_factor.py): wrong codes are budgeted
    # like passwords (same window and delays), per device cookie, else per
    # account and per client address; a right password waits this many
    # seconds for its factor, and an authenticator being enrolled this long
    # for its first code.
    "MFA_FREE_FAILURES_PER_ACCOUNT": 5,
    "MFA_FREE_FAILURES_PER_ADDRESS": 20,
    "MFA_FREE_FAILURES_PER_DEVICE": 5,
    "MFA_PENDING_LIFETIME": 5 * 60,
    "MFA_ENROL_LIFETIME": 15 * 60,
    # Passkeys (idp/passkeys.py): seconds a WebAuthn ceremony (enrolment or
    # sign-in) stays open in the browser that started it. Failed passkey
    # sign-ins count per client address against LOGIN_FREE_FAILURES_PER_ADDRESS
    # (their own counter), with the login's window and delays.
    "PASSKEY_CEREMONY_LIFETIME": 5 * 60,
    # Registration (manual p.11–16): failed contract verifications within the
    # window (registration/service.py says why). The 4-digit items (口座番号 /
    # クレジットカード番号 下4桁) have a hard budget per contract, and at
    # 追加認証情報 another per contract and first item, and count per client
    # address. The 10-digit お客さま番号 and 12-hex STB ID cannot be guessed:
    # they are budgeted per client address and kana name + phone (others'
    # mistakes behind a shared NAT do not count against the holder), and per
    # client address with the larger STRONG budget (one address cannot try
    # numbers without end). Address budgets delay progressively. Also the
    # lifetime of the mailed URL (the manual says 30 minutes).
    "REGISTRATION_VERIFY_FAILURES": 5,
    # ... and in the long run: once a contract's 4-digit items have failed this
    # many times, each failure no more than LONG_WINDOW after the one before,
    # they are refused until LONG_WINDOW after the last (10,000 values, so at
    # most 0.2 % of them a month). The holder registers with the お客さま番号.
    "REGISTRATION_VERIFY_LONG_FAILURES": 20,
    "REGISTRATION_VERIFY_LONG_WINDOW": 30 * 24 * 3600,
    "REGISTRATION_VERIFY_FAILURES_PER_ADDRESS": 30,
    "REGISTRATION_VERIFY_STRONG_FAILURES_PER_ADDRESS": 300,
    "REGISTRATION_VERIFY_WINDOW": 30 * 60,
    "REGISTRATION_URL_LIFETIME": 30 * 60,
    # Step 4 (ID check and mail) per contract and per client address, per window.
    "REGISTRATION_MAILS_PER_CONTRACT": 5,
    "REGISTRATION_MAILS_PER_ADDRESS": 20,
    # Recovery (manual p.17–24): lifetime of a procedure, its code and its
    # link (the manual says 30 minutes), and how many procedures may be
    # started per window (each may send a mail): per iTSCOM ID from browsers
    # that never signed in to it, which anybody can spend; per browser that
    # did (its device cookie, as for login), which only that browser can, so
    # strangers never keep the holder from recovering; and per client
    # address, after which each request waits twice as long as the one before,
    # up to RECOVERY_ADDRESS_MAX_DELAY seconds (short: one address may be a
    # mobile carrier's NAT in front of many customers).
    "RECOVERY_LIFETIME": 30 * 60,
    "RECOVERY_THROTTLE_WINDOW": 30 * 60,
    "RECOVERY_REQUESTS_PER_ID": 3,
    "RECOVERY_REQUESTS_PER_DEVICE": 3,
    "RECOVERY_REQUESTS_PER_ADDRESS": 10,
    "RECOVERY_ADDRESS_MAX_DELAY": 60,
    # Seconds the link that confirms a new contact address (account page)
    # stays usable; its mail says 30 minutes.
    "CONTACT_CHANGE_LIFETIME": 30 * 60,
    # The terms the registration's 利用規約 step links to.
    "TERMS_URL": "https://www.itscom.co.jp/info/covenant/mypage/",
    # How many reverse proxies (load balancer, TLS terminator) stand in front
    # of the OP and set X-Forwarded-For/-Proto/-Host. Their headers are
    # trusted for exactly that many hops; 0 trusts none (direct exposure).
    # Client addresses feed throttling and the audit log, so set this right.
    "TRUSTED_PROXIES": 0,
    # Development and tests only: let the OP fetch and post to non-public
    # addresses (loopback, private, link-local ...) that clients registered
    # as jwks_uri or backchannel_logout_uri. Off, every such destination must
    # be a public address (security/outbound.py: no SSRF). Refused in production.
    "ALLOW_PRIVATE_OUTBOUND": False,
    # Send back-channel logout notices from this process right after the
    # request that ended a session (retries: flask backchannel send --loop).
    "BACKCHANNEL_INLINE": True,
    # Key rotation: a new signing key is published this long before it signs,
    # so that RPs caching the JWKS see it first.
    "KEY_PUBLISH_DELAY": 3600,
    # Encrypts private signing keys at rest when set (any long random string).
    "KEY_ENCRYPTION_KEY": None,
    # Who may read /metrics: comma-separated CIDRs, and/or a bearer token.
    "METRICS_ALLOW": "127.0.0.1/32,::1/128",
    "METRICS_TOKEN": None,
    # Audit events older than this many days are removed by 'flask audit prune'.
    "AUDIT_RETENTION_DAYS": 400,
    # The admin console's session ends after this many idle seconds.
    "ADMIN_IDLE_TIMEOUT": 15 * 60,
    # ... and in any case this many seconds after sign-in.
    "ADMIN_SESSION_LIFETIME": 8 * 3600,
    # Seconds a process may use its cached copy of a client registration.
    "CLIENT_CACHE_SECONDS": 5,
    # Seconds a process may use its cached signing keys (rotation visibility).
    "KEY_CACHE_SECONDS": 30,
    # PostgreSQL: seconds to open a connection, and to wait for a free one in
    # this process's pool, before a request gives up with 503 (the database
    # is unreachable or overloaded): no request waits for it unbounded.
    "DATABASE_CONNECT_TIMEOUT": 5,
    "DATABASE_POOL_TIMEOUT": 5,
    # PostgreSQL: seconds a statement may run, and wait for a lock, before
    # the server cancels it and the request answers 503 (a lock held by a
    # stuck session or an operator's ALTER is an outage, not a hang). A
    # server that cannot cancel (frozen) is given one second more, then the
    # connection is dropped (extensions.DeadlineConnection). Operators' long
    # jobs (migrations, 'flask audit prune') lift the statement timeout.
    "DATABASE_STATEMENT_TIMEOUT": 5,
    "DATABASE_LOCK_TIMEOUT": 2,
    # Load Flask-Migrate outside the 'flask' command too (tests, scripts).
    "MIGRATIONS": False,
    # DPoP (RFC 9449, oauth/dpop.py): how far a proof's iat may lie from the
    # OP's clock, in either direction, in seconds (its jti is remembered that
    # long, in Redis when IDP_REDIS_URL is set, else in the database); whether
    # every proof must carry a nonce the OP issued (DPoP-Nonce, RFC 9449 8 and
    # 9), and for how many seconds a nonce is current (it stays accepted one
    # more such period; nodes sharing IDP_SECRET_KEY accept each other's).
    "DPOP_PROOF_WINDOW": 60,
    "DPOP_NONCE_REQUIRED": False,
    "DPOP_NONCE_LIFETIME": 300,
    # Largest request body accepted anywhere (bytes).
    "MAX_CONTENT_LENGTH": 64 * 1024,
}

SUPPORTED_DATABASES = {"sqlite", "postgresql"}


class ConfigError(Exception):
    """A setting is missing or malformed; the message is one line."""


def load(app, overrides: dict | None = None) -> None:
    """Fill ``app.config`` from defaults, ``IDP_*``, then overrides; validate all of it."""
    app.config.update(DEFAULTS)
    app.config.from_prefixed_env("IDP")
    app.config.update(overrides or {})
    config = app.config
    production = config["ENV"] == "production"
    if config["ENV"] not in ("development", "production"):
        raise ConfigError("IDP_ENV must be 'development' or 'production'")

    config["ISSUER"] = _issuer(config["ISSUER"], production)
    config["SQLALCHEMY_DATABASE_URI"] = _database_url(config, app.instance_path, production)
    config["SECRET_KEY"] = _instance_secret(config, "SECRET_KEY", app.instance_path, production)
    config["HOME_URL"] = _home_url(config["HOME_URL"], production)
    if config["MAIL_URL"] is not None:
        _require_scheme("IDP_MAIL_URL", config["MAIL_URL"], {"smtp", "smtps", "smtp+starttls"})
    if config["REDIS_URL"] is not None:
        _require_scheme("IDP_REDIS_URL", config["REDIS_URL"], {"redis", "rediss", "unix"})
    _require_web_address("IDP_CONTACT_URL", config["CONTACT_URL"])
    config["ALLOW_PRIVATE_OUTBOUND"] = _flag("IDP_ALLOW_PRIVATE_OUTBOUND", config["ALLOW_PRIVATE_OUTBOUND"])
    config["DPOP_NONCE_REQUIRED"] = _flag("IDP_DPOP_NONCE_REQUIRED", config["DPOP_NONCE_REQUIRED"])
    if production and config["ALLOW_PRIVATE_OUTBOUND"]:
        raise ConfigError("IDP_ALLOW_PRIVATE_OUTBOUND must not be set when IDP_ENV=production")
    config["PAIRWISE_SECRET"] = _instance_secret(config, "PAIRWISE_SECRET", app.instance_path, production)
    config["REQUIRE_PAR"] = _flag("IDP_REQUIRE_PAR", config["REQUIRE_PAR"])
    for name, default in DEFAULTS.items():
        if isinstance(default, int) and not isinstance(default, bool):
            value, least = config[name], 0 if name == "TRUSTED_PROXIES" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                kind = "a whole number" if least == 0 else "a positive whole number"
                raise ConfigError(f"IDP_{name} must be {kind}, not {value!r}")

    secure = config["ISSUER"].startswith("https://")
    config.update(
        # Pre-ping: a pooled connection that the server dropped (restart,
        # failover, a proxy's idle timeout) is replaced before a request uses
        # it. SQLAlchemy's own pre-ping is off: extensions.ping_idle_connections
        # skips the ping's round trip (~100 µs of a worker's CPU) for a
        # connection used within the last second whose socket is quiet.
        # hide_parameters: a failed statement's message (logged) never
        # carries bound values — login IDs, password hashes, token digests.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": False, "pool_recycle": 1800, "hide_parameters": True,
                                   **_database_deadlines(config)},
        SESSION_COOKIE_NAME="idp_flow",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=config["SESSION_LIFETIME"],
        WTF_CSRF_TIME_LIMIT=None,  # bound to the session, which expires anyway
        WTF_CSRF_SSL_STRICT=secure,
    )


def _issuer(value: str, production: bool) -> str:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"IDP_ISSUER must be an absolute http(s) URL, not {value!r}")
    if parts.query or parts.fragment:
        raise ConfigError("IDP_ISSUER must not have a query or fragment")
    if production and parts.scheme != "https":
        raise ConfigError("IDP_ISSUER must use https when IDP_ENV=production")
    return value.rstrip("/")


def _home_url(value, production: bool) -> str:
    parts = urlsplit(value if isinstance(value, str) else "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"IDP_HOME_URL must be an absolute http(s) URL, not {value!r}")
    if production and parts.scheme != "https":
        raise ConfigError("IDP_HOME_URL must use https when IDP_ENV=production")
    return value


def _database_url(config, instance_path: str, production: bool) -> str:
    url = config["DATABASE_URL"]
    if url is None:
        if production:
            raise ConfigError("IDP_DATABASE_URL is required when IDP_ENV=production")
        Path(instance_path).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{Path(instance_path) / 'idp.sqlite3'}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"IDP_DATABASE_URL is not a database URL: {url!r}") from None
    if parsed.get_backend_name() not in SUPPORTED_DATABASES:
        raise ConfigError("IDP_DATABASE_URL must be a sqlite:// or postgresql:// URL")
    if parsed.get_backend_name() == "postgresql":
        # psycopg 3 is the driver we ship; "postgresql://" alone would pick psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _database_deadlines(config) -> dict:
    """Engine options that bound every wait for PostgreSQL (SQLite has its own busy timeout)."""
    if make_url(config["SQLALCHEMY_DATABASE_URI"]).get_backend_name() != "postgresql":
        return {}
    return {
        "pool_timeout": config["DATABASE_POOL_TIMEOUT"],
        "connect_args": {
            "connect_timeout": config["DATABASE_CONNECT_TIMEOUT"],
            "options": f"-c statement_timeout={config['DATABASE_STATEMENT_TIMEOUT'] * 1000}"
                       f" -c lock_timeout={config['DATABASE_LOCK_TIMEOUT'] * 1000}",
            # A server that vanished without closing the connection (its host
            # down, the network cut) is given up on within about 15 s, not
            # after TCP's retransmissions (~15 min): keepalive probes for an
            # idle wait, tcp_user_timeout for data never acknowledged.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 5,
            "keepalives_count": 2,
            "tcp_user_timeout": 15_000,
        },
    }


def _instance_secret(config, name: str, instance_path: str, production: bool) -> str:
    """A secret setting: given (32 characters at least), or in development
    generated once into instance/<name in lower case> and read from there
    on every start; production refuses to start without it."""
    key = config[name]
    if key is not None:
        if len(str(key)) < 32:
            raise ConfigError(f"IDP_{name} must be at least 32 characters")
        return str(key)
    if production:
        raise ConfigError(f"IDP_{name} is required when IDP_ENV=production")
    path = Path(instance_path) / name.lower()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _flag(name: str, value) -> bool:
    """A yes/no setting: from the environment as 1/0 or true/false."""
    if value in (True, False, 1, 0, "1", "0", "true", "false"):
        return value in (True, 1, "1", "true")
    raise ConfigError(f"{name} must be 1 or 0, not {value!r}")


def _require_web_address(name: str, value) -> None:
    """A page customers are sent to: an absolute http(s) URL."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an absolute http(s) URL, not {value!r}")


def _require_scheme(name: str, value, schemes: set[str]) -> None:
    if not isinstance(value, str) or urlsplit(value).scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in sorted(schemes))
        raise ConfigError(f"{name} must start with one of {allowed}, not {value!r}")
