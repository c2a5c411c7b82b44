"""Form pieces that more than one flow uses."""

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length

from .accounts import SECRET_QUESTIONS

INVALID_CHOICE = lazy_gettext("選択肢の中から選択してください。")


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
