"""A trivial spyne SOAP 1.1 echo, served by the same gunicorn configuration as pars-ws (the floor for bench/soap.py).

python bench/echo_app.py 127.0.0.1:PORT [WORKERS]
"""

from __future__ import annotations

import sys

from spyne import Application, ServiceBase, Unicode, rpc
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

TNS = "urn:pars-ws:bench:echo"


class EchoService(ServiceBase):
    @rpc(Unicode, _returns=Unicode)
    def echo(ctx, text):
        return text


application = WsgiApplication(
    Application([EchoService], tns=TNS, name="Echo", in_protocol=Soap11(validator="lxml"), out_protocol=Soap11())
)


def envelope(text: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:e="{TNS}"><soap:Body><e:echo><e:text>{text}</e:text></e:echo></soap:Body></soap:Envelope>'
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
    serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
