"""A trivial spyne SOAP 1.1 echo, served by the same gunicorn configuration as pars-ws (the floor for bench/soap.py).

python bench/echo_app.py 127.0.0.1:PORT [WORKERS [DATABASE_URL]]

`echo` answers its text. `store` answers it too, after one durable INSERT through pars-ws's own unit of
work (the project's engine, write lock and BEGIN IMMEDIATE on SQLite; made in each worker, after the
fork): what any service that answers only once a call's data is committed pays per call at least.
"""

from __future__ import annotations

import os
import sys

from spyne import Application, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication
from sqlalchemy import Column, Integer, MetaData, Table, Text, insert

TNS = "urn:pars-ws:bench:echo"
ECHOES = Table(
    "bench_echoes", MetaData(), Column("id", Integer, primary_key=True), Column("text", Text, nullable=False)
)


class _Database:
    """The worker's Store, opened on its first call (never in the gunicorn master)."""

    def __init__(self):
        self.url = None
        self._store, self._pid = None, None

    def store(self):
        from pars_ws.adapters.database import make_engine
        from pars_ws.adapters.store import Store

        if self._pid != os.getpid():
            self._store, self._pid = Store(make_engine(self.url)), os.getpid()
        return self._store


database = _Database()


def create_table(url: str) -> None:
    """Called by the bench before the echo server starts."""
    from pars_ws.adapters.database import make_engine

    engine = make_engine(url)
    ECHOES.metadata.create_all(engine)
    engine.dispose()


class EchoService(ServiceBase):
    @rpc(Unicode, _returns=Unicode)
    def echo(ctx, text):
        return text

    @rpc(Unicode, _returns=Unicode)
    def store(ctx, text):
        with database.store().transaction() as uow:
            uow.learners.conn.execute(insert(ECHOES), {"text": text})
        return text


application = WsgiApplication(
    Application([EchoService], tns=TNS, name="Echo", in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
)


def envelope(text: str, operation: str = "echo") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:e="{TNS}"><soap:Body><e:{operation}><e:text>{text}</e:text></e:{operation}></soap:Body>'
        "</soap:Envelope>"
    ).encode()


def serve(bind: str, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):
        def load_config(self):
            # The options pars_ws.entrypoints.serve.run_gunicorn uses.
            options = {
                "bind": bind,
                "workers": workers,
                "preload_app": True,
                "accesslog": None,
                "timeout": 120,
                "graceful_timeout": 20,
                "worker_class": "sync",
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):
            return application

    _App().run()


if __name__ == "__main__":
    if len(sys.argv) > 3:
        database.url = sys.argv[3]
    serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
