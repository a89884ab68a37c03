"""``sioserver.run(sio, workers=2)`` from a script (the API of ``--workers``), with a short keep-alive."""

from __future__ import annotations

import logging

from workers_app import sio

import sioserver
from sioserver.integrations.http1 import HttpConfig

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)  # the supervisor's line naming the workers' socket directory
    sioserver.run(sio, port=0, workers=2, http=HttpConfig(keepalive_timeout=0.3))
