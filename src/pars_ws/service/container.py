"""Wires adapters and services together once per process."""

from __future__ import annotations

import logging

from ..adapters.account_store import WEB_USER
from ..adapters.clock import Clock
from ..adapters.data_files import load_catalogue
from ..adapters.database import make_engine
from ..adapters.mail import Mailer
from ..adapters.nonces import NonceCache
from ..adapters.store import Store
from ..settings import Settings
from .auth import Authenticator
from .learners import ActivityService, LearnerService


class Services:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.clock = Clock(self.settings.today)
        self.catalogue = load_catalogue()
        self.mailer = Mailer(
            self.settings.smtp_host, self.settings.smtp_port, self.settings.mail_from, self.settings.outbox_dir
        )
        self.open_database()
        logging.getLogger("pars_ws").setLevel(self.settings.log_level)

    def open_database(self) -> None:
        """A new engine, and everything that uses it: a forked process calls this before its first
        query, so that nothing of its parent's database state is ever used in it."""
        previous = getattr(self, "engine", None)
        if previous is not None:
            previous.dispose(close=False)  # the parent's connections are the parent's: never closed here
        self.engine = make_engine(self.settings.database_url)
        self.store = Store(self.engine)
        self.auth = Authenticator(
            self.store,
            self.settings.secret_key,
            self.settings.credential_cache_seconds,
            max_failures=self.settings.login_max_failures,
            lockout_seconds=self.settings.login_lockout_seconds,
        )
        # The pages' log-in: people's web users, separate from the web-service credentials above.
        self.web_auth = Authenticator(
            self.store,
            self.settings.secret_key,
            self.settings.credential_cache_seconds,
            max_failures=self.settings.login_max_failures,
            lockout_seconds=self.settings.login_lockout_seconds,
            kind=WEB_USER,
        )
        self.nonces = NonceCache(self.store, self.clock)
        self.learners = LearnerService(self.store, self.catalogue, self.clock, self.auth)
        self.activities = ActivityService(self.store, self.catalogue, self.clock)
