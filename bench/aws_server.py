"""The AWS stand-in for the runbook benchmark, in its own process: a moto server and one
latency proxy per delay.  In the benchmark's own process, moto and the proxies would share one
GIL with the runbook being timed, and their CPU would count as Omni's.

It also seeds the guide's stack there: the sandbox settles some resources through moto's
backends (what a stack deployed days ago shows), which live in this process.

Prints one JSON line (``{"moto": url, "proxies": {delay: url}, "outputs": {…}, "extra": {…}}``)
and serves until killed.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any


def main(delays: list[float]) -> None:
    from moto.moto_api import state_manager
    from moto.server import ThreadedMotoServer

    from sandbox.moto_ext import install_moto_extensions

    from .latency_proxy import LatencyProxy

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    install_moto_extensions()  # what the sandbox teaches moto, in the process that serves it
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address[:2]
    moto_url = f"http://{host}:{port}"
    proxies = {str(d): LatencyProxy(moto_url, d).__enter__() for d in delays}
    stack = _seed(moto_url)
    print(
        json.dumps(
            {
                "moto": moto_url,
                "proxies": {d: p.url for d, p in proxies.items()},
                "outputs": stack.outputs,
                "extra": stack.extra,
            },
            default=str,
        ),
        flush=True,
    )
    while True:
        time.sleep(3600)


def _seed(moto_url: str) -> Any:
    import boto3

    from commands.aws import ClientPool
    from commands.names import Names
    from commands.settings import Settings
    from sandbox import seed

    os.environ.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    settings = Settings()
    return seed(ClientPool(boto3.session.Session()), Names.from_settings(settings), "us-east-1")


if __name__ == "__main__":
    main([float(d) for d in sys.argv[1:]])
