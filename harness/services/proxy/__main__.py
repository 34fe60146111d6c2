"""A standalone fault proxy with its HTTP control API, e.g. as a Deployment in front of MinIO::

    python -m harness.services.proxy --upstream minio:9000 [--listen 0.0.0.0:8080] [--control 0.0.0.0:8081]

Prints one line with the data and control URLs once both listen, then serves until
SIGTERM or SIGINT, stops both cleanly and exits 0. Bad arguments: a one-line usage
error and exit 2; an address that cannot be bound: a one-line error and exit 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from harness.errors import HarnessError
from harness.services.proxy._proxy import FaultProxy
from harness.services.proxy.control import ProxyControlServer

PROG = "python -m harness.services.proxy"


def host_port(text: str, *, allow_zero: bool = True) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as ``(host, port)``; ArgumentTypeError otherwise."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    lowest = 0 if allow_zero else 1
    if not sep or not host or not port_text.isdigit() or not lowest <= int(port_text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with a port in {lowest}..65535, got {text!r}")
    return host, int(port_text)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="A TCP fault proxy with an HTTP control API.")
    p.add_argument("--upstream", required=True, metavar="HOST:PORT",
                   type=lambda text: host_port(text, allow_zero=False), help="the dependency to forward to")
    p.add_argument("--listen", default=("0.0.0.0", 8080), metavar="HOST:PORT", type=host_port,
                   help="where clients connect (default 0.0.0.0:8080; port 0 picks a free one)")
    p.add_argument("--control", default=("0.0.0.0", 8081), metavar="HOST:PORT", type=host_port,
                   help="the control API (default 0.0.0.0:8081; port 0 picks a free one)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status."""
    args = parser().parse_args(argv)
    (upstream_host, upstream_port), (listen_host, listen_port) = args.upstream, args.listen
    control_host, control_port = args.control
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    proxy = FaultProxy(upstream_host=upstream_host, upstream_port=upstream_port, listen_host=listen_host,
                       listen_port=listen_port)
    try:
        with proxy, ProxyControlServer(proxy, host=control_host, port=control_port) as control:
            print(f"fault proxy: data {proxy.url} -> upstream {upstream_host}:{upstream_port}; "
                  f"control {control.url}", flush=True)
            while not stop.wait(0.5):
                pass
    except HarnessError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"fault proxy: stopped ({received[0] if received else 'done'})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
