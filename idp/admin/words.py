"""The console's words: what the OP's own names (key states, grant types,
audit events) and its English errors (clients.ClientError,
contracts.ImportProblem, which the CLI and RFC 7591 answers keep in English)
say to an operator, in Japanese."""

from __future__ import annotations

from ..clients import ClientError
from ..contracts import COLUMNS, ImportProblem

# keys.state()
KEY_STATES = {
    "next": "公開済み（署名開始前）",
    "active": "署名に使用中",
    "retired": "検証のみ（署名終了）",
    "removed": "公開終了",
}

OUTCOMES = {"success": "成功", "failure": "失敗"}

GRANT_TYPES = {
    "authorization_code": "認可コード",
    "refresh_token": "リフレッシュトークン",
    "client_credentials": "クライアントクレデンシャル",
}

SUBJECT_TYPES = {
    "public": "共通（すべてのサイトに同じ識別子）",
    "pairwise": "サイト別（セクター識別子ごとに異なる識別子）",
}

AUTH_METHODS = {
    "client_secret_basic": "クライアントシークレット（Basic認証）",
    "client_secret_post": "クライアントシークレット（POST）",
    "private_key_jwt": "秘密鍵で署名したJWT",
    "none": "なし（公開クライアント、PKCE必須）",
}

# Every event audit.record() writes (tests/admin check that none is missing).
EVENTS = {
    "login.success": "ログイン成功",
    "login.failure": "ログイン失敗",
    "login.throttled": "ログイン試行の一時停止",
    "logout": "ログアウト",
    "consent.granted": "同意",
    "consent.denied": "同意の拒否",
    "token.code_reuse": "認可コードの再使用（発行済みトークンを無効化）",
    "token.refresh_reuse": "リフレッシュトークンの再使用（系列を無効化）",
    "token.revoked": "トークンの無効化",
    "registration.verified": "新規登録: 契約者情報認証 成功",
    "registration.verify_failed": "新規登録: 契約者情報認証 失敗",
    "registration.verify_throttled": "新規登録: 契約者情報認証の一時停止",
    "registration.step4_throttled": "新規登録: ID・パスワード設定の一時停止",
    "registration.mail_queued": "新規登録: 本登録メール送信",
    "registration.url_refused": "新規登録: 無効なURL",
    "registration.login_id_taken": "新規登録: 使用済みのiTSCOM ID",
    "registration.completed": "新規登録: 完了",
    "registration.replaced": "新規登録: 完了（iTSCOM IDを置き換え）",
    "recovery.started": "再発行: 本人認証",
    "recovery.throttled": "再発行: 本人認証の一時停止",
    "recovery.link_mailed": "再発行: 本人認証確認用メール送信",
    "recovery.code_verified": "再発行: 認証コード 成功",
    "recovery.code_failed": "再発行: 認証コード 失敗",
    "recovery.secret_verified": "再発行: 合言葉 成功",
    "recovery.secret_failed": "再発行: 合言葉 失敗",
    "recovery.refused": "再発行: 手続きを続けられない",
    "recovery.completed": "再発行: 完了",
    "account.password_reset": "パスワード変更",
    "account.contact_change_requested": "連絡先メールアドレス変更の受付",
    "account.contact_changed": "連絡先メールアドレス変更",
    "account.secret_set": "合言葉の設定",
    "account.session_ended": "セッションの終了（お客さま操作）",
    "account.site_revoked": "連携サイトの解除（お客さま操作）",
    "second_factor.enabled": "2段階認証の設定",
    "second_factor.disabled": "2段階認証の解除（お客さま操作）",
    "second_factor.codes_renewed": "2段階認証: リカバリーコードの再作成",
    "second_factor.verified": "2段階認証 成功",
    "second_factor.failure": "2段階認証 失敗",
    "second_factor.throttled": "2段階認証の試行の一時停止",
    "account.passkey_added": "パスキーの登録",
    "account.passkey_removed": "パスキーの削除",
    "account.passkey_refused": "パスキー登録の失敗",
    "mail.sent": "メール送信",
    "mail.failed": "メール送信失敗",
    "backchannel.delivered": "バックチャネルログアウト通知",
    "backchannel.failed": "バックチャネルログアウト通知失敗",
    "client.created": "クライアント登録",
    "client.registered": "クライアント登録（動的登録）",
    "client.updated": "クライアント変更",
    "client.deleted": "クライアント削除",
    "client.secret_rotated": "クライアントシークレット再発行",
    "client.initial_token_issued": "動的登録用トークン発行",
    "key.rotated": "署名鍵のローテーション",
    "contracts.imported": "ご契約データ取り込み（コマンド）",
    "account.provisioned": "iTSCOM IDの作成（コマンド）",
    "admin.created": "管理者の作成",
    "admin.login": "管理者ログイン",
    "admin.login_failure": "管理者ログイン失敗",
    "admin.login_throttled": "管理者ログイン試行の一時停止",
    "admin.logout": "管理者ログアウト",
    "admin.client_created": "管理: クライアント登録",
    "admin.client_updated": "管理: クライアント変更",
    "admin.client_deleted": "管理: クライアント削除",
    "admin.client_disabled": "管理: クライアント無効化",
    "admin.client_enabled": "管理: クライアント有効化",
    "admin.client_secret_rotated": "管理: クライアントシークレット再発行",
    "admin.contracts_imported": "管理: ご契約データ取り込み",
    "admin.account_locked": "管理: iTSCOM IDのロック",
    "admin.account_unlocked": "管理: iTSCOM IDのロック解除",
    "admin.account_revoked": "管理: セッション・トークンの無効化",
    "admin.second_factor_reset": "管理: 2段階認証のリセット",
}

# The client metadata a ClientError names.
CLIENT_FIELDS = {
    "client_name": "名前",
    "redirect_uris": "リダイレクトURI",
    "post_logout_redirect_uris": "ログアウト後リダイレクトURI",
    "backchannel_logout_uri": "バックチャネルログアウトURI",
    "jwks_uri": "公開鍵のURI（jwks_uri）",
    "jwks": "公開鍵（jwks）",
    "grant_types": "グラントタイプ",
    "scope": "スコープ",
    "token_endpoint_auth_method": "トークンエンドポイント認証方式",
    "id_token_signed_response_alg": "IDトークン署名アルゴリズム",
    "token_endpoint_auth_signing_alg": "クライアントアサーションの署名アルゴリズム",
    "subject_type": "お客さま識別子の種類",
    "sector_identifier_uri": "セクター識別子URI",
}

CLIENT_RULES = {
    "invalid_url": "{field}「{value}」はURLとして正しくありません。",
    "not_absolute_https": "{field}「{value}」は「https://」で始まるURLにしてください。",
    "http_not_loopback": "{field}「{value}」は「https://」で始まるURLにしてください（暗号化しないURLはループバックアドレスにだけ使えます）。",
    "fragment": "{field}「{value}」に「#」以降（フラグメント）は付けられません。",
    "not_public": "{field}「{value}」はインターネット上の公開アドレスにしてください（内部ネットワークへの接続は許可されません）。",
    "name_required": "名前を入力してください。",
    "unsupported": "{field}に対応していない値があります: {value}",
    "redirect_uri_required": "認可コードを使うクライアントには、リダイレクトURIが1つ以上必要です。",
    "public_client_credentials": "公開クライアント（認証方式「なし」）はクライアントクレデンシャルを使えません。",
    "keys_required": "秘密鍵で署名したJWTを使うには、公開鍵（jwks）または公開鍵のURI（jwks_uri）が必要です。",
    "invalid_jwks": "公開鍵（jwks）がJWK Setとして正しくありません。",
    "private_jwks": "公開鍵（jwks）に秘密鍵を含めることはできません。",
    "no_secret": "公開クライアントにはシークレットがありません。",
    "sector_required": "リダイレクトURIのホストが複数あるサイト別識別子のクライアントには、セクター識別子URIが必要です。",
    "sector_unreadable": "{field}「{value}」からリダイレクトURIの一覧（JSONの配列）を読み取れませんでした。",
    "sector_mismatch": "{field}「{value}」の一覧に、登録するリダイレクトURIがすべて含まれていません。",
    "sector_not_pairwise": "セクター識別子URIは、お客さま識別子の種類が「サイト別」のときだけ指定できます。",
    "first_party_pairwise": "ファーストパーティのクライアントは、お客さま識別子の種類を「共通」にしてください。",
}

IMPORT_RULES = {
    "header": "1行目は見出し行にしてください（" + ",".join(COLUMNS) + "）。",
    "columns": f"列の数を{len(COLUMNS)}にしてください。",
    "repeat": "お客さま番号が{first}行目と重複しています。",
    "customer_number": "お客さま番号は10桁の数字にしてください。",
    "name_kanji": "ご契約者氏名は1～100文字にしてください。",
    "name_kana": "ご契約者氏名カナはカタカナにしてください。",
    "phones": "電話番号は、0から始まる10桁または11桁の番号を「;」で区切って入力してください。",
    "bank_last4": "口座番号 下4桁は4桁の数字か空欄にしてください。",
    "card_last4": "クレジットカード番号 下4桁は4桁の数字か空欄にしてください。",
    "stb_ids": "STB IDは12桁の16進数（0～9、A～F）を「;」で区切って入力してください。",
    "contact_emails": "連絡先メールアドレスはメールアドレスを「;」で区切って入力してください。",
    "additional_auth": "追加認証の要否は「true」か「false」にしてください。",
}


def client_error(error: ClientError) -> str:
    return CLIENT_RULES[error.rule].format(field=CLIENT_FIELDS.get(error.field, error.field), value=error.value)


def import_problem(problem: ImportProblem) -> str:
    return f"{problem.line}行目: " + IMPORT_RULES[problem.rule].format(first=problem.first)
