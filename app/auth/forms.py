from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from app.auth.services import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from app.forms_support import TextPolicy


class SignInForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    email = EmailField("Email", validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


# -- admin and profile ---------------------------------------------------------------------
# Forms check the shape of the input; app.auth.services checks what needs the database
# (unique email, team name, current password); app.forms_support puts its problems on the fields.


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


class CheckboxListField(SelectMultipleField):  # type: ignore[misc]
    """Several choices as a list of checkboxes: easier with a keyboard than a multi-select."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class NewUserForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    email = EmailField(
        "Email",
        filters=[_strip],
        validators=[
            DataRequired(message="Enter the user's email address."),
            Email(message="Enter an email address like name@example.com."),
            Length(max=254),
        ],
    )
    first_name = StringField(
        "First name",
        filters=[_strip],
        validators=[DataRequired(message="Enter a first name."), Length(max=100)],
    )
    last_name = StringField(
        "Last name",
        filters=[_strip],
        validators=[DataRequired(message="Enter a last name."), Length(max=100)],
    )
    phone = TelField(
        "Phone (optional)",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=32),
            Regexp(
                r"^\+?[0-9][0-9 ().-]*$",
                message="Use digits, spaces, brackets or dashes, with an optional leading +.",
            ),
        ],
    )
    is_admin = BooleanField("Admin: can manage users, teams and global workflows")
    # Choices are checked by the service, which says which team went missing.
    team_ids = CheckboxListField("Teams to join", choices=[], validate_choice=False)


class NewTeamForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField(
        "Name",
        filters=[_strip],
        validators=[
            DataRequired(message="Enter a team name."),
            Length(max=100, message="Keep the name to 100 characters or fewer."),
        ],
    )
    chat_channel = StringField(
        "Chat channel (optional)",
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=100),
            Regexp(
                r"^#[A-Za-z0-9][A-Za-z0-9._-]*$",
                message="Write the channel like #payments-oncall: a # and then letters, "
                "digits, '.', '-' or '_'.",
            ),
        ],
    )


class AddMemberForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    # The service checks the choice: an active user who is not in the team yet.
    user_id = SelectField(
        "User to add",
        choices=[],
        validate_choice=False,
        validators=[DataRequired(message="Choose a user to add.")],
    )


class ChangePasswordForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    current_password = PasswordField(
        "Current password",
        validators=[DataRequired(message="Enter your current password."), Length(max=1024)],
    )
    new_password = PasswordField(
        "New password",
        validators=[
            DataRequired(message="Enter a new password."),
            Length(
                min=MIN_PASSWORD_LENGTH,
                max=MAX_PASSWORD_LENGTH,
                message=f"Choose a password of {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} "
                "characters.",
            ),
        ],
    )
    confirm_password = PasswordField(
        "Repeat the new password",
        validators=[
            DataRequired(message="Enter the new password again."),
            EqualTo("new_password", message="This does not match the new password."),
        ],
    )


class NewTokenForm(TextPolicy, FlaskForm):  # type: ignore[misc]
    name = StringField(
        "Token name",
        filters=[_strip],
        validators=[
            DataRequired(message="Give the token a name."),
            Length(max=100, message="Keep the name to 100 characters or fewer."),
        ],
    )
