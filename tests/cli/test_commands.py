"""Operator commands under ``flask --app idp`` with the spellings operators script."""

import json

import pytest

from idp import keys
from idp.extensions import db
from idp.models import (
    Account,
    AuditEvent,
    Client,
    Contract,
    InitialAccessToken,
    SigningKey,
)

from ..conftest import FIXTURE_CONTRACTS
from ..faults import audit_rows_refused

HEADER = FIXTURE_CONTRACTS.read_text(encoding="utf-8").splitlines()[0]


def count(app, model):
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_contracts_import_upserts_by_customer_number(app, runner, tmp_path):
    result = runner.invoke(args=["contracts", "import", str(FIXTURE_CONTRACTS)])
    assert result.exit_code == 0, result.output
    assert count(app, Contract) == 8
    with app.app_context():
        row = db.session.scalar(db.select(AuditEvent).filter_by(event="contracts.imported"))
        assert row.details == {"file": FIXTURE_CONTRACTS.name, "created": 8, "updated": 0}
    changed = tmp_path / "changed.csv"
    changed.write_text(f"{HEADER}\n2005128462,逸 太郎,ｲﾂ ﾀﾛｳ,0312345679,4821,,00a0de12f3b4,,false\n", encoding="utf-8")
    result = runner.invoke(args=["contracts", "import", str(changed)])
    assert result.exit_code == 0 and "0 new, 1 updated" in result.output
    with app.app_context():
        contract = db.session.scalar(db.select(Contract).filter_by(customer_number="2005128462"))
        assert contract.phones == ["0312345679"] and contract.stb_ids == ["00A0DE12F3B4"]
        assert contract.kana_key == "イツタロウ"


def test_contracts_import_reports_bad_row_and_imports_nothing(app, runner, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        f"{HEADER}\n"
        "2005120001,一 郎,イチ ロウ,0311112222,,,,,false\n"
        "2005120002,二 郎,ジ ロウ,0311113333,12345,,,,false\n"  # bank_last4 has 5 digits
        "2005120003,三 郎,サブ ロウ,0311114444,,,,,maybe\n",  # and every bad row is reported
        encoding="utf-8",
    )
    result = runner.invoke(args=["contracts", "import", str(bad)])
    assert result.exit_code != 0
    assert "line 3" in result.output and "bank_last4" in result.output
    assert "line 4" in result.output and "additional_auth" in result.output
    assert count(app, Contract) == 0


def test_contracts_import_refuses_a_wrong_header(app, runner, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_number,name\n2005120001,x\n", encoding="utf-8")
    result = runner.invoke(args=["contracts", "import", str(bad)])
    assert result.exit_code != 0 and "line 1" in result.output


def test_accounts_create(app, runner, contracts):
    args = ["accounts", "create", "--customer-number", "2005128463", "--login-id", "yamada@example.jp",
            "--password", "Yamada-2026", "--contact-email", "yamada.mobile@example.com", "--contact-unconfirmed"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    with app.app_context():
        account = db.session.scalar(db.select(Account).filter_by(login_id="yamada@example.jp"))
        assert account.contact_email == "yamada.mobile@example.com" and not account.contact_email_verified
        assert account.password_hash.startswith("$argon2id$")
        provisioned = db.session.scalar(db.select(AuditEvent).filter_by(event="account.provisioned"))
        assert provisioned.account_id == account.id
    again = runner.invoke(args=args)
    assert again.exit_code != 0 and "already has an iTSCOM ID" in again.output


def test_accounts_create_applies_the_manuals_rules(app, runner, contracts):
    base = ["accounts", "create", "--customer-number", "2005128463", "--login-id"]
    assert "6～32文字" in runner.invoke(args=base + ["y@example.jp", "--password", "abc"]).output
    assert "推測されやすい" in runner.invoke(args=base + ["y@example.jp", "--password", "password1"]).output
    assert "メールアドレス形式" in runner.invoke(args=base + ["yamada", "--password", "Yamada-2026"]).output
    assert "no contract" in runner.invoke(args=["accounts", "create", "--customer-number", "1",
                                                "--login-id", "a@example.jp", "--password", "Yamada-2026"]).output
    assert count(app, Account) == 0


def test_clients_create_json_list_rotate_delete(app, runner):
    result = runner.invoke(args=[
        "clients", "create", "--name", "Support", "--redirect-uri", "https://support.example/cb",
        "--post-logout-redirect-uri", "https://support.example/", "--grant-type", "authorization_code",
        "--scope", "openid", "--scope", "email", "--auth-method", "client_secret_post", "--first-party", "--json",
    ])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["client_secret"] and created["token_endpoint_auth_method"] == "client_secret_post"
    assert created["redirect_uris"] == ["https://support.example/cb"] and created["scope"] == "openid email"
    with app.app_context():
        stored = db.session.scalar(db.select(Client).filter_by(client_id=created["client_id"]))
        assert created["client_secret"] not in json.dumps(stored.client_metadata)
        assert stored.client_secret_digest != created["client_secret"]
        assert stored.check_client_secret(created["client_secret"])

    listed = json.loads(runner.invoke(args=["clients", "list", "--json"]).output)
    assert [c["client_id"] for c in listed] == [created["client_id"]] and "client_secret" not in listed[0]

    rotated = json.loads(runner.invoke(args=["clients", "rotate-secret", created["client_id"], "--json"]).output)
    with app.app_context():
        stored = db.session.scalar(db.select(Client).filter_by(client_id=created["client_id"]))
        assert stored.check_client_secret(rotated["client_secret"])
        assert not stored.check_client_secret(created["client_secret"])

    assert runner.invoke(args=["clients", "delete", created["client_id"]]).exit_code == 0
    assert count(app, Client) == 0


def test_clients_create_with_a_name_for_english_pages(runner):
    result = runner.invoke(args=["clients", "create", "--name", "サポート", "--english-name", "Support",
                                 "--redirect-uri", "https://support.example/cb", "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["client_name"] == "サポート" and created["client_name#en"] == "Support"


def test_public_client_has_no_secret(runner):
    result = runner.invoke(args=["clients", "create", "--name", "App", "--redirect-uri", "http://127.0.0.1/cb",
                                 "--auth-method", "none", "--json"])
    assert "client_secret" not in json.loads(result.output)


def test_clients_create_refuses_bad_redirect_uris(app, runner):
    for uri in ["http://example.com/cb", "https://example.com/cb#frag", "/relative", "ftp://x/cb"]:
        result = runner.invoke(args=["clients", "create", "--name", "X", "--redirect-uri", uri, "--json"])
        assert result.exit_code != 0, uri
    assert count(app, Client) == 0


def test_clients_create_refuses_uris_the_op_would_fetch_from_its_own_network(app, runner):
    for option, uri in [("--backchannel-logout-uri", "https://169.254.169.254/latest/meta-data/"),
                        ("--jwks-uri", "https://127.0.0.1:6379/"), ("--jwks-uri", "https://[::ffff:10.0.0.1]/jwks")]:
        result = runner.invoke(args=["clients", "create", "--name", "X", "--redirect-uri", "https://rp.example/cb",
                                     "--auth-method", "private_key_jwt", option, uri, "--json"])
        assert result.exit_code == 1 and "must be on a public address" in result.output, result.output
        assert "Traceback" not in result.output
    assert count(app, Client) == 0


def test_demo_needs_private_outbound_for_its_loopback_sites(app, runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 1 and "IDP_ALLOW_PRIVATE_OUTBOUND=1" in result.output
    assert count(app, Client) == 0


@pytest.mark.parametrize("config_overrides", [{"ALLOW_PRIVATE_OUTBOUND": True}])  # as make run sets it
def test_demo_is_idempotent(app, runner):
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "taro.itsu@example.jp / itscom-demo1" in second.output
    assert first.output == second.output  # the same credentials every time
    assert "client_id: mypage-demo" in second.output and "client_id: support-demo" in second.output
    assert count(app, Account) == 1 and count(app, Client) == 2 and count(app, Contract) == 8


def test_client_ids_never_look_like_an_option():
    """`flask clients delete -x…` would read a leading dash as an option."""
    from idp.clients import new_client_id

    assert not any(new_client_id().startswith("-") for _ in range(2000))


def test_keys_rotate_commits_the_new_keys_with_their_audit_rows(app, runner):
    """The rotation and its audit rows commit together: when the database
    refuses the audit rows, no key was added either."""
    with app.app_context():
        keys.keyring()  # the first keys, as any earlier request would have made them
    before = count(app, SigningKey)
    with audit_rows_refused(app):
        result = runner.invoke(args=["keys", "rotate"])
    assert result.exit_code != 0
    assert count(app, SigningKey) == before and count(app, AuditEvent) == 0


def test_an_initial_token_commits_with_its_audit_row_or_not_at_all(app, runner):
    with audit_rows_refused(app):
        result = runner.invoke(args=["clients", "initial-token"])
    assert result.exit_code != 0 and count(app, InitialAccessToken) == 0
    assert runner.invoke(args=["clients", "initial-token"]).exit_code == 0
    assert count(app, InitialAccessToken) == 1 and count(app, AuditEvent) == 1


def test_clients_create_requiring_par_with_pairwise_subjects(app, runner):
    result = runner.invoke(args=["clients", "create", "--name", "Partner", "--redirect-uri",
                                 "https://partner.example/cb", "--require-par", "--subject-type", "pairwise", "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["require_pushed_authorization_requests"] is True and created["subject_type"] == "pairwise"
    with app.app_context():
        stored = db.session.scalar(db.select(Client).filter_by(client_id=created["client_id"]))
        assert stored.requires_pushed_authorization_requests and stored.sector_identifier == "partner.example"
    refused = runner.invoke(args=["clients", "create", "--name", "Two", "--redirect-uri", "https://a.example/cb",
                                  "--redirect-uri", "https://b.example/cb", "--subject-type", "pairwise"])
    assert refused.exit_code != 0 and "sector_identifier_uri" in refused.output
    refused = runner.invoke(args=["clients", "create", "--name", "Ours", "--redirect-uri", "https://a.example/cb",
                                  "--subject-type", "pairwise", "--first-party"])
    assert refused.exit_code != 0 and "public subjects" in refused.output
