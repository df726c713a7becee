"""What the web's forms and paths take, each bounded here once: the pages parse these and
nothing else from outside."""

from typing import Annotated

from fastapi import Form, Path

# A staff account's name as made (lower case; the sign-in form lowers what is typed).
Username = Annotated[str, Form(min_length=1, max_length=64)]
Password = Annotated[str, Form(min_length=1, max_length=256)]
# A one-time sign-in link's token (secrets.token_urlsafe(32): 43 characters).
SignInToken = Annotated[str, Path(min_length=20, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
