"""Memory ballast: grows a pod's memory cgroup until the kernel's OOM killer acts on the pod's container.

``python -m harness.cluster.embedded.node_agent.ballast <cgroup.procs> <seconds>``: makes itself
unkillable by the OOM killer where it may (``oom_score_adj`` -1000 needs CAP_SYS_RESOURCE; the node agent
also raises the pod process's own score to 1000), so the killer picks the pod's own process, as
it picks the biggest process of a real pod whose memory grew; joins the pod's memory cgroup, and
allocates (and touches) 4 MiB every few milliseconds for at most ``seconds``. The node agent starts it
for a memory-limit fault and kills it when the container has ended. It plays the part of memory
growth inside the pod (as an ephemeral debug container shares a pod's cgroup): on cgroup v1 a limit
below a process's resident memory is refused by the kernel, so a limit alone never kills a process
whose memory stays flat.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

CHUNK_BYTES = 4 << 20
PAUSE_SECONDS = 0.005


def main(argv: list[str]) -> int:
    procs, seconds = Path(argv[0]), float(argv[1])
    try:
        Path("/proc/self/oom_score_adj").write_text("-1000")
    except OSError:  # lowering it needs CAP_SYS_RESOURCE; the agent raises the pod's own score instead
        pass
    deadline = time.monotonic() + seconds
    joined = False
    held: list[bytearray] = []
    while time.monotonic() < deadline:
        if not joined:
            try:
                procs.write_text(str(os.getpid()))
                joined = True
            except OSError:  # joining may itself meet the limit, and the OOM killer then acts already
                if not procs.exists():
                    return 0
        else:
            held.append(bytearray(CHUNK_BYTES))  # zero-filled: every page is touched and charged
        time.sleep(PAUSE_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
