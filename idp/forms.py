"""Form pieces that more than one flow uses."""

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import PasswordField, SelectChoice, SelectField, StringField, widgets
from wtforms.validators import DataRequired, EqualTo, Length
from wtforms.widgets.core import clean_key

from .accounts import SECRET_QUESTIONS
from .security.credentials import password_problems

REQUIRED = lazy_gettext("入力してください。")
INVALID_CHOICE = lazy_gettext("選択肢の中から選択してください。")


def html_params(**kwargs) -> Markup:
    """WTForms' ``html_params``, the same attributes in the same order and
    escaping, in a third of its CPU: it formats each attribute through
    Markup.format (string.Formatter, ~15 µs an attribute)."""
    params = []
    for key, value in sorted(kwargs.items()):
        if value is True:
            params.append(str(escape(clean_key(key))))
        elif value is not False:
            params.append(f'{escape(clean_key(key))}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(params))


class _QuickParams:
    html_params = staticmethod(html_params)


# WTForms' plain input widgets, rendering their attributes with html_params
# above; QuickForm renders these instead of the library's, as configured.
_QUICK_WIDGETS = {
    base: type(base.__name__, (_QuickParams, base), {})()
    for base in (widgets.TextInput, widgets.PasswordInput, widgets.HiddenInput, widgets.CheckboxInput)
}


class QuickForm(FlaskForm):
    """A form whose plain inputs (its CSRF token's too) render their
    attributes through ``html_params`` above: the login page renders seven."""

    class Meta:
        def render_field(self, field, render_kw):
            widget = field.widget
            quick = _QUICK_WIDGETS.get(type(widget))
            if quick is not None and vars(quick) == vars(widget):  # configured as the default
                field.widget = quick  # this form's field only: it renders the same
            return super().render_field(field, render_kw)


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class ConfirmForm(FlaskForm):
    """A bare form: its CSRF token is the whole point (consent, logout)."""


class SecretForm(FlaskForm):
    """合言葉登録 (p.19) and 合言葉入力 (p.21); the account page sets the 合言葉 with it too."""

    question = SelectField(
        lazy_gettext("秘密の質問"),
        choices=choices([("", lazy_gettext("秘密の質問を選択してください。")),
                         *[(q, lazy_gettext(q)) for q in SECRET_QUESTIONS]]),
        validators=[DataRequired(lazy_gettext("秘密の質問を選択してください。"))],
        invalid_choice_message=INVALID_CHOICE,
    )
    answer = StringField(lazy_gettext("答え"), validators=[DataRequired(lazy_gettext("答えを入力してください。")),
                                                         Length(max=50)])


class NewPasswordForm(FlaskForm):
    """A new password and its confirmation under the manual's rules (p.14):
    ID・パスワード設定 (p.14), パスワード再発行 (p.21, p.23) and the account
    page's パスワード変更. ``for_login_id`` is the iTSCOM ID the password
    will belong to, which it may not equal; ``LABELS`` are the page's words."""

    LABELS = (lazy_gettext("パスワード"), lazy_gettext("パスワード再入力"))

    password = PasswordField(validators=[DataRequired(REQUIRED), Length(max=256)])
    password_confirm = PasswordField(validators=[
        DataRequired(REQUIRED), Length(max=256),
        EqualTo("password", lazy_gettext("パスワードとパスワード再入力が一致しません。")),
    ])

    def __init__(self, *args, for_login_id: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.for_login_id = for_login_id
        self.password.label.text, self.password_confirm.label.text = self.LABELS

    def login_id_of_password(self) -> str:
        return self.for_login_id

    def validate_password(self, field) -> None:
        field.errors.extend(password_problems(field.data, self.login_id_of_password()))


class FactorCodeForm(FlaskForm):
    """A second factor's code: the authenticator's 6 digits, or a recovery
    code (2段階認証 at login, and the account page's changes to it)."""

    code = StringField(lazy_gettext("確認コード"), validators=[DataRequired(lazy_gettext("確認コードを入力してください。")),
                                                            Length(max=64)])
