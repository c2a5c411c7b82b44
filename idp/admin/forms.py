"""The console's forms, with the labels the console shows (Japanese)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)

from wtforms.validators import DataRequired

from ..clients import (
    AUTH_METHODS,
    DEFAULT_AUTH_METHOD,
    DEFAULT_SCOPES,
    GRANT_TYPES,
    SUBJECT_TYPES,
    ClientError,
)
from ..keys import DEFAULT_ALG, SUPPORTED_ALGS
from ..models import Client
from ..security.clock import JAPAN
from . import words
from .service import AuditFilter

DIGITS = re.compile(r"[0-9]{1,12}")
PERIOD_FORMAT = "日付は「2026-01-31」、時刻は「09:30」の形式で入力してください。"


def _choices(values, labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, labels[value]) for value in values]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class SearchForm(FlaskForm):
    """A search: GET, so no CSRF token."""

    class Meta:
        csrf = False


class LoginForm(FlaskForm):
    # No field is required here: an empty one fails like a wrong one (401),
    # and the answer never says which factor was wrong.
    username = StringField("ユーザー名")
    password = PasswordField("パスワード")
    code = StringField("確認コード（認証アプリ）")


class ClientForm(FlaskForm):
    """A client's registration. Choices the OP does not support are left to
    clients.build_metadata, which names them (ClientError)."""

    name = StringField("名前")
    redirect_uris = TextAreaField("リダイレクトURI（1行に1つ）")
    post_logout_redirect_uris = TextAreaField("ログアウト後リダイレクトURI（1行に1つ）")
    backchannel_logout_uri = StringField("バックチャネルログアウトURI")
    grant_types = SelectMultipleField("グラントタイプ", choices=_choices(GRANT_TYPES, words.GRANT_TYPES),
                                      validate_choice=False)
    scope = StringField("スコープ（空白区切り）")
    auth_method = SelectField("トークンエンドポイント認証方式", choices=_choices(AUTH_METHODS, words.AUTH_METHODS),
                              default=DEFAULT_AUTH_METHOD, validate_choice=False)
    id_token_alg = SelectField("IDトークン署名アルゴリズム", choices=SUPPORTED_ALGS, default=DEFAULT_ALG,
                               validate_choice=False)
    first_party = BooleanField("ファーストパーティ（同意画面を表示しない）")
    # RFC 9449 5.2: every token request of the client must carry a DPoP proof.
    dpop_bound_access_tokens = BooleanField("DPoPを必須にする（鍵に結び付いたアクセストークンだけを発行する）")
    require_par = BooleanField("認可リクエストの事前送信（プッシュ型）を必須にする")
    subject_type = SelectField("お客さま識別子の種類", choices=_choices(SUBJECT_TYPES, words.SUBJECT_TYPES),
                               default="public", validate_choice=False)
    sector_identifier_uri = StringField("セクター識別子URI（サイト別でリダイレクトURIのホストが複数のとき）")

    # The field of each client metadata a ClientError may name.
    FIELDS = {
        "client_name": "name",
        "redirect_uris": "redirect_uris",
        "post_logout_redirect_uris": "post_logout_redirect_uris",
        "backchannel_logout_uri": "backchannel_logout_uri",
        "grant_types": "grant_types",
        "scope": "scope",
        "token_endpoint_auth_method": "auth_method",
        "id_token_signed_response_alg": "id_token_alg",
        "subject_type": "subject_type",
        "sector_identifier_uri": "sector_identifier_uri",
    }

    @classmethod
    def initial(cls, client: Client | None) -> dict:
        """What the form shows before it is posted: the client as registered, or a new client's defaults."""
        if client is None:
            return {"grant_types": ["authorization_code", "refresh_token"], "scope": " ".join(DEFAULT_SCOPES)}
        meta = client.client_metadata
        return {
            "name": meta.get("client_name", ""),
            "redirect_uris": "\n".join(meta.get("redirect_uris") or []),
            "post_logout_redirect_uris": "\n".join(meta.get("post_logout_redirect_uris") or []),
            "backchannel_logout_uri": meta.get("backchannel_logout_uri", ""),
            "grant_types": meta.get("grant_types", ["authorization_code", "refresh_token"]),
            "scope": meta.get("scope", " ".join(DEFAULT_SCOPES)),
            "auth_method": meta.get("token_endpoint_auth_method", DEFAULT_AUTH_METHOD),
            "id_token_alg": meta.get("id_token_signed_response_alg", DEFAULT_ALG),
            "first_party": client.first_party,
            "dpop_bound_access_tokens": bool(meta.get("dpop_bound_access_tokens")),
            "require_par": bool(meta.get("require_pushed_authorization_requests")),
            "subject_type": meta.get("subject_type", "public"),
            "sector_identifier_uri": meta.get("sector_identifier_uri", ""),
        }

    def metadata(self) -> dict:
        """The posted values as clients.build_metadata's arguments."""
        return {
            "name": self.name.data or "",
            "redirect_uris": _lines(self.redirect_uris.data),
            "post_logout_redirect_uris": _lines(self.post_logout_redirect_uris.data),
            "backchannel_logout_uri": (self.backchannel_logout_uri.data or "").strip() or None,
            "grant_types": self.grant_types.data or [],
            "scopes": (self.scope.data or "").split(),
            "auth_method": self.auth_method.data,
            "id_token_signed_response_alg": self.id_token_alg.data,
            "dpop_bound_access_tokens": bool(self.dpop_bound_access_tokens.data),
            "require_pushed_authorization_requests": bool(self.require_par.data),
            "subject_type": self.subject_type.data,
            "sector_identifier_uri": (self.sector_identifier_uri.data or "").strip() or None,
        }

    def refuse(self, error: ClientError) -> None:
        """Show what build_metadata refused next to its field (or above the
        form, for what the form has no field for)."""
        message = words.client_error(error)
        name = self.FIELDS.get(error.field)
        (self[name].errors if name else self.form_errors).append(message)


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class ImportForm(FlaskForm):
    """A billing CSV: uploaded to be checked, then posted back as text to be imported."""

    csv = FileField("CSVファイル")
    csv_text = TextAreaField()
    confirm = BooleanField()

    def text(self) -> str:
        upload = self.csv.data
        if upload:
            return upload.read().decode("utf-8-sig", errors="replace")
        return self.csv_text.data or ""


class ContractSearchForm(SearchForm):
    customer_number = StringField("お客さま番号", filters=[_strip])


class AccountSearchForm(SearchForm):
    q = StringField("iTSCOM ID または お客さま番号", filters=[_strip])


class FactorResetForm(FlaskForm):
    """2段階認証のリセット: only after the customer's own request was checked."""

    confirmed = BooleanField("お客さまご本人からの申し出であることを確認しました",
                             validators=[DataRequired("確認欄にチェックを入れてください。")])


class KeyRotationForm(FlaskForm):
    alg = SelectField(choices=SUPPORTED_ALGS)


class AuditFilterForm(SearchForm):
    """The audit log's filter: event, account, client and a period given as
    date and time in Japan time."""

    event = SelectField("種類", choices=_choices(["", *sorted(words.EVENTS, key=words.EVENTS.get)], {"": "すべて", **words.EVENTS}),
                        validate_choice=False)
    account_id = StringField("アカウント番号")
    client_id = StringField("クライアントID")
    since_date = StringField("日付", render_kw={"type": "date"})
    since_time = StringField("時刻", render_kw={"type": "time"})
    until_date = StringField("日付", render_kw={"type": "date"})
    until_time = StringField("時刻", render_kw={"type": "time"})

    def validate(self, extra_validators=None) -> bool:
        """The fields, and a period the database can be asked for: each
        malformed end is named next to its date."""
        valid = super().validate(extra_validators)
        self.since = self._moment(self.since_date, self.since_time, end_of_day=False)
        self.until = self._moment(self.until_date, self.until_time, end_of_day=True)
        return valid and not (self.since_date.errors or self.until_date.errors)

    def _moment(self, day, clock, end_of_day: bool) -> int | None:
        try:
            return _japan_time(day.data or "", clock.data or "", end_of_day)
        except (ValueError, OverflowError):
            day.errors.append(PERIOD_FORMAT)
            return None

    def filter(self) -> AuditFilter:
        """What to show (after validate()); an account number that is not one is ignored."""
        account_id = self.account_id.data or ""
        return AuditFilter(
            event=self.event.data or None,
            account_id=int(account_id) if DIGITS.fullmatch(account_id) else None,
            client_id=self.client_id.data or None,
            since=self.since,
            until=self.until,
        )


def _japan_time(day: str, clock: str, end_of_day: bool) -> int | None:
    """Epoch seconds of a date (YYYY-MM-DD) and optional time (HH:MM) in Japan
    time; None without a date. Without a time, a period starts at the start
    of its first day and ends with the end of its last; with one, it ends at
    the end of that minute. ValueError when malformed."""
    if not day.strip():
        if clock.strip():
            raise ValueError("a time without a date")
        return None
    moment = datetime.combine(date.fromisoformat(day.strip()),
                              time.fromisoformat(clock.strip()) if clock.strip() else time(0), JAPAN)
    if end_of_day:
        moment += timedelta(minutes=1) if clock.strip() else timedelta(days=1)
    return int(moment.timestamp())
