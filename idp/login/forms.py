from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    login_id = StringField(
        "iTSCOM ID",
        validators=[DataRequired("iTSCOM IDを入力してください。"), Length(max=254, message="iTSCOM IDが長すぎます。")],
    )
    password = PasswordField(
        "パスワード",
        validators=[DataRequired("パスワードを入力してください。"), Length(max=256, message="パスワードが長すぎます。")],
    )
    show_password = BooleanField("パスワードを表示")
