"""``python -m harness.cluster.embedded.node_agent``: serve one process node until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from harness.cluster.embedded.node_agent.agent import NodeAgent, NodeConfig
from harness.undo import default_undo_log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="node_agent", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--pods", type=int, default=4)
    parser.add_argument("--cpu", default="2")
    parser.add_argument("--memory", default="8Gi")
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--pod-cwd", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    agent = NodeAgent(
        kubeconfig=Path(args.kubeconfig),
        node=NodeConfig(name=args.node, pods=args.pods, cpu=args.cpu, memory=args.memory, gpus=args.gpus),
        workdir=Path(args.workdir),
        pod_cwd=Path(args.pod_cwd),
        undo=default_undo_log(),
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
