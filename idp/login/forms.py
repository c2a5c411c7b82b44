from flask_babel import lazy_gettext
from wtforms import BooleanField, HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..forms import QuickForm
from ..passkeys import MAX_RESPONSE


class LoginForm(QuickForm):
    login_id = StringField(
        "iTSCOM ID",
        validators=[DataRequired(lazy_gettext("iTSCOM IDを入力してください。")),
                    Length(max=254, message=lazy_gettext("iTSCOM IDが長すぎます。"))],
    )
    password = PasswordField(
        lazy_gettext("パスワード"),
        validators=[DataRequired(lazy_gettext("パスワードを入力してください。")),
                    Length(max=256, message=lazy_gettext("パスワードが長すぎます。"))],
    )
    show_password = BooleanField(lazy_gettext("パスワードを表示"))


class PasskeyLoginForm(QuickForm):
    """What login.js posts after パスキーでログイン: the passkey's answer (JSON)."""

    credential = HiddenField(validators=[DataRequired(), Length(max=MAX_RESPONSE)])
