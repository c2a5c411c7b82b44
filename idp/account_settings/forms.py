from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..forms import REQUIRED, FactorCodeForm, NewPasswordForm, SecretForm
from ..passkeys import MAX_RESPONSE, NAME_LENGTH

# The page holds three forms that each ask the current password: each
# field gets its own id, so that each label names its own input.


class PasswordChangeForm(NewPasswordForm):
    LABELS = (lazy_gettext("新しいパスワード"), lazy_gettext("新しいパスワード再入力"))

    current_password = PasswordField(lazy_gettext("現在のパスワード"), id="password_current_password",
                                     validators=[DataRequired(REQUIRED), Length(max=256)])


class ContactChangeForm(FlaskForm):
    contact_email = StringField(lazy_gettext("新しい連絡先メールアドレス"), validators=[DataRequired(REQUIRED), Length(max=254)])
    current_password = PasswordField(lazy_gettext("現在のパスワード"), id="contact_current_password",
                                     validators=[DataRequired(REQUIRED), Length(max=256)])


class SecretChangeForm(SecretForm):
    current_password = PasswordField(lazy_gettext("現在のパスワード"), id="secret_current_password",
                                     validators=[DataRequired(REQUIRED), Length(max=256)])


class FactorSetupForm(FactorCodeForm):
    """2段階認証の設定: the authenticator's first code, and the current password.
    (The account page's two factor forms take a prefix, renew and off, so
    that each label names its own input.)"""

    current_password = PasswordField(lazy_gettext("現在のパスワード"),
                                     validators=[DataRequired(REQUIRED), Length(max=256)])


class PasskeyNameForm(FlaskForm):
    """パスキーを登録する: a name for it, and the current password."""

    name = StringField(lazy_gettext("パスキーの名前"), id="passkey_name",
                       validators=[DataRequired(REQUIRED), Length(max=NAME_LENGTH)])
    current_password = PasswordField(lazy_gettext("現在のパスワード"), id="passkey_current_password",
                                     validators=[DataRequired(REQUIRED), Length(max=256)])


class PasskeyForm(FlaskForm):
    """What passkey.js posts once the browser made the passkey: its answer (JSON)."""

    credential = HiddenField(validators=[DataRequired(), Length(max=MAX_RESPONSE)])


class PasskeyFactorForm(FlaskForm):
    """2段階認証（パスキー）を設定する: the current password."""

    current_password = PasswordField(lazy_gettext("現在のパスワード"), id="passkey_factor_current_password",
                                     validators=[DataRequired(REQUIRED), Length(max=256)])
