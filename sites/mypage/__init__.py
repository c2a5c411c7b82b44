"""My Page (マイページ): the customer's dashboard, a relying party of iTSCOM ID.

It knows the OP only through discovery and its client id and secret, and
keeps its own data (bills, services, notices) keyed by the ``customer_number``
claim. Settings: MYPAGE_ISSUER, MYPAGE_CLIENT_ID, MYPAGE_CLIENT_SECRET,
MYPAGE_SECRET_KEY, MYPAGE_DATABASE; MYPAGE_CONTACT_URL (ヘルプ's お問い合わせ,
by default the operator's contact form); MYPAGE_STEP_UP_MAX_AGE (seconds
a sign-in with the second factor opens 各種設定, by default 900).
"""

from __future__ import annotations

from flask import Flask, render_template

from .. import rpkit
from . import data

SCOPE = "openid profile email contract"


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
    rpkit.configure(app, "MYPAGE", SCOPE, schema=data.SCHEMA, overrides=test_config)
    data.seed(app.config["DATABASE"])

    @app.route("/")
    @rpkit.login_required
    def top():
        """トップ (manual p.3)."""
        customer = rpkit.current_user().get("customer_number")
        return render_template("top.html", active="top", latest=data.latest_bill(customer),
                               important=data.notices(customer, important=True),
                               notices=data.notices(customer, important=False))

    @app.route("/billing")
    @rpkit.login_required
    def billing():
        """料金: recent months."""
        return render_template("billing.html", active="billing",
                               bills=data.bills(rpkit.current_user().get("customer_number")))

    @app.route("/contract")
    @rpkit.login_required
    def contract():
        """ご契約・手続き: the contracted services."""
        return render_template("contract.html", active="contract",
                               services=data.services(rpkit.current_user().get("customer_number")))

    @app.route("/settings")
    @rpkit.step_up_required
    def settings():
        """各種設定: the iTSCOM ID's own settings live on the OP; changes
        start here, after a step-up (rpkit.step_up_required)."""
        return render_template("settings.html", active="settings", op=app.config["ISSUER"].rstrip("/"))

    @app.route("/help")
    @rpkit.login_required
    def help():
        """ヘルプ: FAQ links."""
        return render_template("help.html", active="help")

    return app
