"""Entry points that the login page links to and later work fills in.

The recovery procedure (manual p.17–24) is not built yet; its entry URL
exists so that the login page links to where it will live, and says
honestly that the procedure is not available yet.
"""

from flask import Blueprint, render_template

bp = Blueprint("pages", __name__)


@bp.route("/recovery/")
def recovery():
    """iTSCOM ID・パスワードが分からなくなったら (p.17): recovery starts here."""
    return render_template("pages/unavailable.html", title="iTSCOM ID・パスワードがご不明なお客様"), 503
