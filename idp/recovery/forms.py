"""The recovery forms, labelled with the manual's words (p.17–23)."""

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField
from wtforms.validators import DataRequired, Length

from ..forms import INVALID_CHOICE, choices


class ChoiceForm(FlaskForm):
    """iTSCOM ID・パスワードがご不明なお客様 (p.17)."""

    unknown = RadioField(
        lazy_gettext("不明な項目"),
        choices=choices([("password", lazy_gettext("パスワードがご不明な場合")), ("id", lazy_gettext("iTSCOM IDがご不明な場合 (iTSCOM ID新規登録)"))]),
        validators=[DataRequired(lazy_gettext("項目を選択してください。"))],
        invalid_choice_message=INVALID_CHOICE,
    )


class IdentifyForm(FlaskForm):
    """本人認証 (p.18)."""

    login_id = StringField("iTSCOM ID", validators=[DataRequired(lazy_gettext("iTSCOM IDを入力してください。")), Length(max=254)])


class CodeForm(FlaskForm):
    """認証コード入力 (p.22)."""

    code = StringField(lazy_gettext("認証コード"), validators=[DataRequired(lazy_gettext("認証コードを入力してください。")), Length(max=12)])
