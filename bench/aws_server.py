"""The AWS stand-in for the runbook benchmark, in its own process: a moto server and one
latency proxy per delay.  In the benchmark's own process, moto and the proxies would share one
GIL with the runbook being timed, and their CPU would count as Omni's.

Prints one JSON line (``{"moto": url, "proxies": {delay: url}}``) and serves until killed.
"""

from __future__ import annotations

import json
import logging
import sys
import time


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
    print(
        json.dumps({"moto": moto_url, "proxies": {d: p.url for d, p in proxies.items()}}),
        flush=True,
    )
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main([float(d) for d in sys.argv[1:]])
