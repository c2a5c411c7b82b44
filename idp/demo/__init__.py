"""Demo data for a newcomer's machine: contracts, one customer, two relying parties.

Idempotent: running it again converges the demo clients' registrations and
prints the same credentials (their secrets are derived from this
instance's secret key, so nothing secret is stored in clear).
"""

from __future__ import annotations

import hashlib
import hmac
from importlib import resources

from flask import current_app

from ..accounts import create_account
from ..clients import GRANT_TYPES, build_metadata, create_client
from ..contracts import import_contracts
from ..extensions import db
from ..keys import ensure_signing_keys
from ..models import Account, Client
from ..security.secrets import digest

LOGIN_ID = "taro.itsu@example.jp"
PASSWORD = "itscom-demo1"
CUSTOMER = "2005128462"
MYPAGE_PORT, SUPPORT_PORT = 5001, 5002
# Each site's registered name, and its name on English pages (client_name#en).
CLIENTS = {
    "mypage-demo": ("マイページ", "My Page", MYPAGE_PORT),
    "support-demo": ("iTSCOM サポート", "iTSCOM Support", SUPPORT_PORT),
}


def load() -> dict[str, dict]:
    """Load everything; returns each demo client's id, secret and URLs."""
    ensure_signing_keys()
    import_contracts(resources.files("idp.demo").joinpath("contracts.csv").read_text(encoding="utf-8"))
    if db.session.scalar(db.select(Account).filter_by(login_id=LOGIN_ID)) is None:
        create_account(CUSTOMER, LOGIN_ID, PASSWORD)
    result = {}
    for client_id, (name, english_name, port) in CLIENTS.items():
        base = f"http://127.0.0.1:{port}"
        secret = hmac.new(current_app.secret_key.encode(), client_id.encode(), hashlib.sha256).hexdigest()
        metadata = build_metadata(
            name,
            [f"{base}/auth/callback"],
            [f"{base}/logged-out"],
            backchannel_logout_uri=f"{base}/backchannel-logout",
            grant_types=list(GRANT_TYPES),
            english_name=english_name,
        )
        client = db.session.scalar(db.select(Client).filter_by(client_id=client_id))
        if client is None:
            client, _ = create_client(name, metadata["redirect_uris"], metadata["post_logout_redirect_uris"],
                                      backchannel_logout_uri=metadata["backchannel_logout_uri"],
                                      grant_types=metadata["grant_types"], first_party=True, client_id=client_id)
        client.client_metadata = metadata
        client.first_party = True
        client.client_secret_digest = digest(secret)
        result[client_id] = {"client_id": client_id, "client_secret": secret, "url": base,
                             "redirect_uri": f"{base}/auth/callback"}
    db.session.commit()
    return result
