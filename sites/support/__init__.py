"""iTSCOM サポート: a second relying party, to show single sign-on and logout.

Settings: SUPPORT_ISSUER, SUPPORT_CLIENT_ID, SUPPORT_CLIENT_SECRET,
SUPPORT_SECRET_KEY, SUPPORT_DATABASE.
"""

from __future__ import annotations

from flask import Flask, render_template

from .. import rpkit
from ..rpkit import N_

SCOPE = "openid profile email"
TOPICS = [
    (N_("インターネットにつながらないとき"), "https://www.itscom.co.jp/support/trouble/internet/"),
    (N_("テレビが映らないとき"), "https://www.itscom.co.jp/support/trouble/tv/"),
    (N_("電話がつながらないとき"), "https://www.itscom.co.jp/support/trouble/phone/"),
    (N_("引越し・ご契約内容の変更"), "https://www.itscom.co.jp/support/procedure/"),
]


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    rpkit.configure(app, "SUPPORT", SCOPE, overrides=test_config)

    @app.route("/")
    @rpkit.login_required
    def top():
        return render_template("support.html", topics=TOPICS)

    return app
