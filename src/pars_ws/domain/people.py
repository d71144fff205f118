"""People's web users and the web-service credentials a provider manages: what a new one needs.

Web users log in to the pages; credentials are for SOAP and the JSON API. PARS keeps them apart
("This access is different from any existing PARS access in the interface").
"""

from __future__ import annotations

MIN_PASSWORD = 12  # a password a person chooses (generated ones are longer)
MAX_NAME, MAX_EMAIL, MAX_USERNAME = 200, 320, 100


def password_problems(password: str | None) -> list[str]:
    """A chosen password: None means one is generated."""
    if password is not None and len(password) < MIN_PASSWORD:
        return [f"A password needs at least {MIN_PASSWORD} characters."]
    return []


def email_ok(email: str) -> bool:
    local, at, domain = email.partition("@")
    return bool(
        at
        and local
        and "." in domain.strip(".")
        and not any(c.isspace() for c in email)
        and "@" not in domain
        and len(email) <= MAX_EMAIL
    )


def web_user_problems(name: str, email: str, password: str | None) -> list[str]:
    found = []
    if not name.strip() or len(name) > MAX_NAME:
        found.append(f"A name is required (at most {MAX_NAME} characters).")
    if not email_ok(email.strip()):
        found.append("An e-mail address such as name@example.org is required.")
    return found + password_problems(password)


def credential_problems(username: str, password: str | None) -> list[str]:
    found = []
    if not username or len(username) > MAX_USERNAME or any(c.isspace() for c in username):
        found.append(f"A user name is required: at most {MAX_USERNAME} characters, no spaces.")
    return found + password_problems(password)
