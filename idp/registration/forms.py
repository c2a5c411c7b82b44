"""The registration forms, labelled with the manual's words (p.12–16)."""

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, ValidationError
from wtforms.validators import DataRequired, Length

from ..contracts import is_kana_key, kana_key
from ..forms import INVALID_CHOICE, REQUIRED, NewPasswordForm, choices
from ..security.credentials import login_id_problems
from .service import PAYMENT_ITEMS, item_well_formed, phone_well_formed

# Why a payment item is refused before any contract is looked at: its
# format alone, next to the field, naming the item chosen.
ITEM_FORMATS = {
    "customer_number": lazy_gettext("お客さま番号は10桁の数字でご入力ください。"),
    "bank_last4": lazy_gettext("口座番号 下4桁は4桁の数字でご入力ください。"),
    "card_last4": lazy_gettext("クレジットカード番号 下4桁は4桁の数字でご入力ください。"),
    "stb_id": lazy_gettext("セットトップボックス (STB/Hit pot) のIDは12桁の英数字（0～9、A～F）でご入力ください。"),
}


class PaymentItemForm(FlaskForm):
    """One お支払情報等 chosen and its value, checked by format only: a
    malformed value is answered here, before verify_contract, so it neither
    spends a throttle budget nor tells anything about contracts."""

    def validate_payment_value(self, field) -> None:
        kind = self.payment_type.data
        if kind in PAYMENT_ITEMS and field.data and not item_well_formed(kind, field.data):
            raise ValidationError(ITEM_FORMATS[kind])


class VerifyForm(PaymentItemForm):
    """契約者情報 認証 (p.12)."""

    name_kana = StringField(lazy_gettext("ご契約者氏名（カナ）"), validators=[DataRequired(REQUIRED), Length(max=100)])
    phone = StringField(lazy_gettext("登録済みの電話番号"), validators=[DataRequired(REQUIRED), Length(max=30)])
    payment_type = RadioField(
        lazy_gettext("お支払情報等の種類"), choices=choices(PAYMENT_ITEMS.items()), validators=[DataRequired(lazy_gettext("項目を選択してください。"))],
        invalid_choice_message=INVALID_CHOICE
    )
    payment_value = StringField(lazy_gettext("お支払情報等"), validators=[DataRequired(REQUIRED), Length(max=40)])

    def validate_name_kana(self, field) -> None:
        if field.data and not is_kana_key(kana_key(field.data)):
            raise ValidationError(lazy_gettext("カタカナで入力してください。"))

    def validate_phone(self, field) -> None:
        if field.data and not phone_well_formed(field.data):
            raise ValidationError(lazy_gettext("登録済みの電話番号は、0から始まる10桁または11桁の数字でご入力ください。"))


class AdditionalForm(PaymentItemForm):
    """追加認証情報 (p.13): one more item, different from the first."""

    payment_type = RadioField(lazy_gettext("追加認証情報の種類"), validators=[DataRequired(lazy_gettext("項目を選択してください。"))],
        invalid_choice_message=INVALID_CHOICE)
    payment_value = StringField(lazy_gettext("追加認証情報"), validators=[DataRequired(REQUIRED), Length(max=40)])


class TermsForm(FlaskForm):
    """利用規約 (p.14 step 3)."""

    agreement = RadioField(
        lazy_gettext("利用規約への同意"),
        choices=choices([("agree", lazy_gettext("承諾する")), ("disagree", lazy_gettext("承諾しない"))]),
        validators=[DataRequired(lazy_gettext("「承諾する」を選択してください。"))],
        invalid_choice_message=INVALID_CHOICE,
    )


class AccountForm(NewPasswordForm):
    """iTSCOM ID and password (p.14 step 4) under the manual's rules."""

    login_id = StringField("iTSCOM ID", validators=[DataRequired(REQUIRED), Length(max=254)])

    def login_id_of_password(self) -> str:
        return (self.login_id.data or "").strip()

    def validate_login_id(self, field) -> None:
        field.data = field.data.strip()
        field.errors.extend(login_id_problems(field.data))


class ContactForm(FlaskForm):
    """連絡先メールアドレス(※)を選択してください。 (p.16 step 7)."""

    contact_email = RadioField(lazy_gettext("連絡先メールアドレス"), validators=[DataRequired(lazy_gettext("選択してください。"))], invalid_choice_message=INVALID_CHOICE)
