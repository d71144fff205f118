"""Providers, web-service credentials, people's web users and WS-Security nonces (SQLAlchemy 2 Core), inside a unit of work.

Not environment-scoped: the credential (or web user) decides the environment.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, String, bindparam, case, delete, insert, literal, or_, select, update

from . import tables as t

_C, _P, _W = t.credentials, t.providers, t.web_users


def _login_select(table, name, secret, person):
    """One log-in row (with its throttling state) joined with its provider, by log-in name."""
    return (
        select(
            table.c.id,
            table.c.environment,
            name.label("username"),
            secret.label("secret_hash"),
            table.c.disabled,
            table.c.failed_logins,
            table.c.locked_until,
            person.label("person"),
            _P.c.id.label("provider_pk"),
            _P.c.provider_id,
            _P.c.name.label("provider_name"),
            _P.c.domain,
            _P.c.email,
        )
        .join(_P, _P.c.id == table.c.provider_pk)
        .where(name == bindparam("username"))
    )


# The two kinds of log-in: web-service credentials (SOAP, JSON API) and people's web users (pages).
CREDENTIAL, WEB_USER = "credential", "web_user"
_LOGIN = {
    CREDENTIAL: _login_select(_C, _C.c.username, _C.c.secret_hash, literal(None, String)),
    WEB_USER: _login_select(_W, _W.c.email, _W.c.password_hash, _W.c.name),
}
_LOGIN_TABLE = {CREDENTIAL: (_C, _C.c.username), WEB_USER: (_W, _W.c.email)}


def _login_name(kind: str, name: str) -> str:
    return name.lower() if kind == WEB_USER else name  # e-mail addresses are kept in lower case


def _owned(table, provider_pk: int | None, environment: str | None) -> list:
    """Conditions keeping a change to one provider's log-ins in one environment (none when not given)."""
    found = [] if provider_pk is None else [table.c.provider_pk == provider_pk]
    return found + ([] if environment is None else [table.c.environment == environment])


class AccountRepository:
    def __init__(self, conn: Connection):
        self.conn = conn

    # -- providers ------------------------------------------------------------------------------
    def provider(self, provider_id: str):
        return self.conn.execute(select(_P).where(_P.c.provider_id == provider_id)).first()

    def provider_by_pk(self, pk: int):
        return self.conn.execute(select(_P).where(_P.c.id == pk)).first()

    def ensure_provider(self, provider_id: str, name: str, domain: str, email: str, contact: str | None = None) -> int:
        row = self.provider(provider_id)
        if row is not None:
            return row.id
        return self.conn.execute(
            insert(_P)
            .values(
                provider_id=provider_id,
                name=name,
                domain=domain,
                email=email,
                contact=contact,
            )
            .returning(_P.c.id)
        ).scalar_one()

    # -- credentials ----------------------------------------------------------------------------
    def login(self, kind: str, username: str):
        """The log-in row of this kind (CREDENTIAL or WEB_USER) with its throttling state and provider, or None."""
        return self.conn.execute(_LOGIN[kind], {"username": _login_name(kind, username)}).first()

    def credential(self, username: str):
        return self.login(CREDENTIAL, username)

    def credentials(self, provider_pk: int | None = None, environment: str | None = None):
        """Every credential, or a provider's in one environment."""
        return self.conn.execute(
            select(_C.c.username, _C.c.environment, _C.c.disabled, _C.c.created_at, _C.c.rotated_at, _P.c.provider_id)
            .join(_P, _P.c.id == _C.c.provider_pk)
            .where(*_owned(_C, provider_pk, environment))
            .order_by(_P.c.provider_id, _C.c.username)
        ).all()

    def any_credential(self) -> bool:
        return self.conn.execute(select(_C.c.id).limit(1)).first() is not None

    def any_web_user(self) -> bool:
        return self.conn.execute(select(_W.c.id).limit(1)).first() is not None

    def add_credential(
        self, provider_pk: int, environment: str, username: str, secret_hash: str, now: dt.datetime
    ) -> None:
        self.conn.execute(
            insert(_C).values(
                provider_pk=provider_pk,
                environment=environment,
                username=username,
                secret_hash=secret_hash,
                disabled=False,
                created_at=now,
            )
        )

    def set_credential(
        self,
        username: str,
        now: dt.datetime,
        *,
        secret_hash: str | None = None,
        disabled: bool | None = None,
        provider_pk: int | None = None,
        environment: str | None = None,
    ) -> bool:
        """Change a credential (of this provider and environment when given); False when there is none."""
        values: dict = {}
        if secret_hash is not None:
            values.update(secret_hash=secret_hash, rotated_at=now)
        if disabled is not None:
            values["disabled"] = disabled
        return (
            self.conn.execute(
                update(_C).where(_C.c.username == username, *_owned(_C, provider_pk, environment)).values(**values)
            ).rowcount
            == 1
        )

    def reset_failures(self, username: str, kind: str = CREDENTIAL) -> bool:
        """Forget a log-in's failed logins and lift its lock; False for an unknown user."""
        table, name = _LOGIN_TABLE[kind]
        return (
            self.conn.execute(
                update(table).where(name == _login_name(kind, username)).values(failed_logins=0, locked_until=None)
            ).rowcount
            == 1
        )

    def count_failure(
        self, username: str, now: dt.datetime, max_failures: int, lockout: dt.timedelta, kind: str = CREDENTIAL
    ) -> None:
        """One failed login; the max_failures-th in a row locks the log-in until now + lockout.

        One statement: it matches no row for an unknown user or a locked log-in (so a lock is not
        extended by further tries), and concurrent failures in other processes are all counted.
        """
        table, name = _LOGIN_TABLE[kind]
        reached = table.c.failed_logins + 1 >= max_failures
        self.conn.execute(
            update(table)
            .where(
                name == _login_name(kind, username), or_(table.c.locked_until.is_(None), table.c.locked_until <= now)
            )
            .values(
                failed_logins=case((reached, 0), else_=table.c.failed_logins + 1),
                locked_until=case((reached, now + lockout), else_=None),
            )
        )

    # -- web users ------------------------------------------------------------------------------
    def web_users(self, provider_pk: int, environment: str):
        return self.conn.execute(
            select(_W.c.name, _W.c.email, _W.c.disabled, _W.c.created_at, _W.c.password_set_at)
            .where(_W.c.provider_pk == provider_pk, _W.c.environment == environment)
            .order_by(_W.c.email)
        ).all()

    def add_web_user(
        self, provider_pk: int, environment: str, name: str, email: str, password_hash: str, now: dt.datetime
    ) -> None:
        self.conn.execute(
            insert(_W).values(
                provider_pk=provider_pk,
                environment=environment,
                name=name,
                email=email.lower(),
                password_hash=password_hash,
                disabled=False,
                created_at=now,
            )
        )

    def set_web_user(
        self,
        email: str,
        now: dt.datetime,
        *,
        password_hash: str | None = None,
        disabled: bool | None = None,
        provider_pk: int | None = None,
        environment: str | None = None,
    ) -> bool:
        """Change a web user (of this provider and environment when given); False when there is none."""
        values: dict = {}
        if password_hash is not None:
            values.update(password_hash=password_hash, password_set_at=now, failed_logins=0, locked_until=None)
        if disabled is not None:
            values["disabled"] = disabled
        return (
            self.conn.execute(
                update(_W).where(_W.c.email == email.lower(), *_owned(_W, provider_pk, environment)).values(**values)
            ).rowcount
            == 1
        )

    # -- WS-Security nonces ---------------------------------------------------------------------
    def remember_nonce(self, nonce_hash: str, now: dt.datetime) -> None:
        """IntegrityError when the nonce was seen already (the primary key decides, across processes)."""
        self.conn.execute(insert(t.ws_nonces).values(nonce_hash=nonce_hash, seen_at=now))

    def forget_nonces(self, before: dt.datetime) -> None:
        self.conn.execute(delete(t.ws_nonces).where(t.ws_nonces.c.seen_at < before))
