"""One kana rule: however billing exported a holder's kana name and however the
customer types it, the same name matches (manual p.12: 全角/半角の入力指定はございません,
姓・名間にスペースは不要です)."""

import pytest
from flask_migrate import upgrade

from idp import create_app
from idp.contracts import ContractImportError, import_contracts, is_kana_key, kana_key
from idp.extensions import db
from idp.models import Contract

from ..conftest import FIXTURE_CONTRACTS
from .helpers import Registrant

HEADER = FIXTURE_CONTRACTS.read_text(encoding="utf-8").splitlines()[0]


@pytest.mark.parametrize(
    ("billing", "typed"),
    [
        ("スミス・ジョン", "ｽﾐｽ･ｼﾞｮﾝ"),  # 中黒, half-width, small kana
        ("スミス・ジョン", "スミス ジョン"),
        ("ｽﾐｽ･ｼﾞﾖﾝ", "スミス・ジョン"),  # an older system without small kana
        ("スミス＝ジョン", "すみすじょん"),
        ("サヽキ タロウ", "ササキタロウ"),  # iteration marks
        ("イスヾ ハナ", "いすず　はな"),
        ("キャロル マーク", "キヤロル マ－ク"),  # small kana, a dash for ー
        ("ﾏｰｸ ｼﾞｮｰﾝｽﾞ", "マ-ク・ジョーンズ"),
        ("ヴァン ダイク", "ゔぁんだいく"),
        ("カ゛ン タロウ", "ガンタロウ"),  # a spacing voiced mark
    ],
)
def test_billing_and_typed_spellings_of_one_name_match(app, client, billing, typed):
    with app.app_context():
        import_contracts(f"{HEADER}\n2005120001,氏名,{billing},0311112222,1234,,,,false\n")
        db.session.commit()
    response = Registrant(app, client).verify(
        name_kana=typed, phone="0311112222", payment_type="bank_last4", payment_value="1234")
    assert response.status_code == 303 and response.location == "/registration/terms"


@pytest.mark.parametrize("name", ["Smith John", "ヽスミス", "スミス123", "山田タロウ"])
def test_a_name_that_is_not_kana_is_refused_by_import_and_by_the_form(app, client, contracts, name):
    with app.app_context(), pytest.raises(ContractImportError, match="name_kana"):
        import_contracts(f"{HEADER}\n2005120001,氏名,{name},0311112222,1234,,,,false\n")
    response = Registrant(app, client).verify(name_kana=name)
    assert response.status_code == 200
    assert "カタカナで入力してください。" in response.get_data(as_text=True)


def test_the_migration_rekeys_contracts_imported_under_the_old_rule(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'old.sqlite3'}", "SECRET_KEY": "x" * 40,
                      "MIGRATIONS": True})
    with app.app_context():
        upgrade(revision="0009")
        db.session.execute(db.text(
            "INSERT INTO contracts (customer_number, name_kanji, name_kana, kana_key, phones, stb_ids, "
            "contact_emails, additional_auth, imported_at) VALUES ('2005120001', '氏名', 'ｽﾐｽ･ｼﾞｮﾝ', "
            "'スミス・ジョン', '[]', '[]', '[]', false, 0)"))
        db.session.commit()
        upgrade()
        assert db.session.scalar(db.select(Contract.kana_key)) == "スミスジヨン"
        db.engine.dispose()


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("スミス・ジョン", "スミスジヨン"),
        ("ｽﾐｽ･ｼﾞｮﾝ", "スミスジヨン"),
        ("すみす　じょん", "スミスジヨン"),
        ("サヽキ", "ササキ"),
        ("イスヾ", "イスズ"),
        ("マ－ク", "マーク"),
        ("ﾏｰｸ", "マーク"),
        ("カ゛ン", "ガン"),
        ("ヴァン", "ヴアン"),
    ],
)
def test_kana_key_is_one_form_for_every_spelling(written, key):
    assert kana_key(written) == key and is_kana_key(key)


@pytest.mark.parametrize("written", ["山田太郎", "Smith John", "スミス1", "", "ア" * 101])
def test_a_name_that_is_not_kana_gives_a_refused_key(written):
    assert not is_kana_key(kana_key(written))
