"""Settings from IDP_*: a bad or missing one stops the start with one line."""

import subprocess
import sys

import pytest
from flask import Flask

from idp import config, create_app


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"ISSUER": "not a url"}, "IDP_ISSUER must be an absolute http(s) URL"),
        ({"ISSUER": "https://id.example/?x=1"}, "must not have a query"),
        ({"DATABASE_URL": "mysql://localhost/x"}, "must be a sqlite:// or postgresql:// URL"),
        ({"DATABASE_URL": "::::"}, "is not a database URL"),
        ({"SECRET_KEY": "short"}, "at least 32 characters"),
        ({"MAIL_URL": "http://mail"}, "IDP_MAIL_URL must start with"),
        ({"REDIS_URL": "localhost:6379"}, "IDP_REDIS_URL must start with"),
        ({"ENV": "production", "ISSUER": "http://id.example"}, "must use https"),
        ({"ENV": "production", "ISSUER": "https://id.example"}, "IDP_DATABASE_URL is required"),
        ({"ACCESS_TOKEN_LIFETIME": -5}, "positive whole number"),
        ({"ALLOW_PRIVATE_OUTBOUND": "yes"}, "IDP_ALLOW_PRIVATE_OUTBOUND must be 1 or 0"),
        ({"CONTACT_URL": "www.itscom.net/info/contact/"}, "IDP_CONTACT_URL must be an absolute http(s) URL"),
        ({"CONTACT_URL": "javascript:alert(1)"}, "IDP_CONTACT_URL must be an absolute http(s) URL"),
        ({"ENV": "production", "ISSUER": "https://id.example", "DATABASE_URL": "postgresql://db/idp",
          "SECRET_KEY": "k" * 40, "ALLOW_PRIVATE_OUTBOUND": True},
         "IDP_ALLOW_PRIVATE_OUTBOUND must not be set when IDP_ENV=production"),
        ({"HOME_URL": "javascript:alert(1)"}, "IDP_HOME_URL must be an absolute http(s) URL"),
        ({"HOME_URL": "/mypage"}, "IDP_HOME_URL must be an absolute http(s) URL"),
        ({"ENV": "production", "ISSUER": "https://id.example", "DATABASE_URL": "postgresql://db/idp",
          "SECRET_KEY": "k" * 40, "HOME_URL": "http://mypage.example/"}, "IDP_HOME_URL must use https"),
        ({"ENV": "production", "ISSUER": "https://id.example", "DATABASE_URL": "postgresql://db/idp",
          "SECRET_KEY": "k" * 40}, "IDP_PAIRWISE_SECRET is required when IDP_ENV=production"),
        ({"PAIRWISE_SECRET": "short"}, "IDP_PAIRWISE_SECRET must be at least 32 characters"),
        ({"REQUIRE_PAR": "yes"}, "IDP_REQUIRE_PAR must be 1 or 0"),
    ],
)
def test_bad_settings_stop_the_start(settings, message):
    with pytest.raises(SystemExit) as stopped:
        create_app(settings)
    assert message in str(stopped.value) and "\n" not in str(stopped.value)


def test_bad_environment_variable_gives_one_line_and_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "idp", "clients", "list"],
        env={"IDP_ISSUER": "ftp://nowhere", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "IDP_ISSUER must be an absolute http(s) URL" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value, allowed", [("1", True), ("0", False), ("true", True), (None, False)])
def test_private_outbound_is_a_development_switch(monkeypatch, tmp_path, value, allowed):
    if value is not None:
        monkeypatch.setenv("IDP_ALLOW_PRIVATE_OUTBOUND", value)
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SECRET_KEY": "k" * 40})
    assert app.config["ALLOW_PRIVATE_OUTBOUND"] is allowed


def test_a_development_pairwise_secret_is_generated_once_and_kept(tmp_path):
    settings = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "SECRET_KEY": "k" * 40}
    apps = [Flask("idp", instance_path=str(tmp_path / "instance")) for _ in range(2)]
    for app in apps:
        config.load(app, settings)
    secrets = {app.config["PAIRWISE_SECRET"] for app in apps}
    assert len(secrets) == 1 and len(secrets.pop()) >= 32
    assert (tmp_path / "instance" / "pairwise_secret").stat().st_mode & 0o077 == 0
