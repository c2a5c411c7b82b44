"""Browsers ask every site for /favicon.ico: the OP, My Page and the support
site answer with the iTSCOM icon, not a 404."""

import pytest

from sites import mypage, support

ICO = b"\x00\x00\x01\x00"  # the ICO file signature


def test_the_op_serves_its_icon(client):
    with client.get("/favicon.ico") as response:  # a file: closed after reading
        assert response.status_code == 200
        assert response.data.startswith(ICO) and response.mimetype in ("image/x-icon", "image/vnd.microsoft.icon")
        assert response.headers["Cache-Control"] == "public, max-age=604800"


@pytest.mark.parametrize("site", [mypage, support])
def test_the_relying_parties_serve_it_too(site, tmp_path):
    app = site.create_app({"ISSUER": "http://127.0.0.1:9", "CLIENT_ID": "x", "CLIENT_SECRET": "y",
                           "SECRET_KEY": "rp-test-secret", "DATABASE": str(tmp_path / "rp.sqlite3")})
    with app.test_client().get("/favicon.ico") as response:  # no sign-in needed
        assert response.status_code == 200 and response.data.startswith(ICO)
