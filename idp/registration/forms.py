"""The registration forms, labelled with the manual's words (p.12–16)."""

from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, SelectChoice, StringField
from wtforms.validators import DataRequired, Length

from .service import PAYMENT_ITEMS

REQUIRED = "入力してください。"
INVALID_CHOICE = "選択肢の中から選択してください。"


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class VerifyForm(FlaskForm):
    """契約者情報 認証 (p.12)."""

    name_kana = StringField("ご契約者氏名（カナ）", validators=[DataRequired(REQUIRED), Length(max=100)])
    phone = StringField("登録済みの電話番号", validators=[DataRequired(REQUIRED), Length(max=30)])
    payment_type = RadioField(
        "お支払情報等の種類", choices=choices(PAYMENT_ITEMS.items()), validators=[DataRequired("項目を選択してください。")],
        invalid_choice_message=INVALID_CHOICE
    )
    payment_value = StringField("お支払情報等", validators=[DataRequired(REQUIRED), Length(max=40)])


class AdditionalForm(FlaskForm):
    """追加認証情報 (p.13): one more item, different from the first."""

    payment_type = RadioField("追加認証情報の種類", validators=[DataRequired("項目を選択してください。")],
        invalid_choice_message=INVALID_CHOICE)
    payment_value = StringField("追加認証情報", validators=[DataRequired(REQUIRED), Length(max=40)])


class TermsForm(FlaskForm):
    """利用規約 (p.14 step 3)."""

    agreement = RadioField(
        "利用規約への同意",
        choices=choices([("agree", "承諾する"), ("disagree", "承諾しない")]),
        validators=[DataRequired("「承諾する」を選択してください。")],
        invalid_choice_message=INVALID_CHOICE,
    )


class AccountForm(FlaskForm):
    """iTSCOM ID and password (p.14 step 4); the manual's rules are checked in the view."""

    login_id = StringField("iTSCOM ID", validators=[DataRequired(REQUIRED), Length(max=254)])
    password = PasswordField("パスワード", validators=[DataRequired(REQUIRED), Length(max=256)])
    password_confirm = PasswordField("パスワード再入力", validators=[DataRequired(REQUIRED), Length(max=256)])


class ContactForm(FlaskForm):
    """連絡先メールアドレス(※)を選択してください。 (p.16 step 7)."""

    contact_email = RadioField("連絡先メールアドレス", validators=[DataRequired("選択してください。")], invalid_choice_message=INVALID_CHOICE)
