"""The recovery forms, labelled with the manual's words (p.17–23)."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField
from wtforms.validators import DataRequired, Length

from ..forms import INVALID_CHOICE, choices

REQUIRED = "入力してください。"


class ChoiceForm(FlaskForm):
    """iTSCOM ID・パスワードがご不明なお客様 (p.17)."""

    unknown = RadioField(
        "不明な項目",
        choices=choices([("password", "パスワードがご不明な場合"), ("id", "iTSCOM IDがご不明な場合 (iTSCOM ID新規登録)")]),
        validators=[DataRequired("項目を選択してください。")],
        invalid_choice_message=INVALID_CHOICE,
    )


class IdentifyForm(FlaskForm):
    """本人認証 (p.18)."""

    login_id = StringField("iTSCOM ID", validators=[DataRequired("iTSCOM IDを入力してください。"), Length(max=254)])


class CodeForm(FlaskForm):
    """認証コード入力 (p.22)."""

    code = StringField("認証コード", validators=[DataRequired("認証コードを入力してください。"), Length(max=12)])


class NewPasswordForm(FlaskForm):
    """パスワード / パスワード再入力 (p.23, and ID・パスワード再発行 p.21)."""

    password = PasswordField("パスワード", validators=[DataRequired(REQUIRED), Length(max=256)])
    password_confirm = PasswordField("パスワード再入力", validators=[DataRequired(REQUIRED), Length(max=256)])
