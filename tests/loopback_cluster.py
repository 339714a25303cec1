"""A two-task TF_CONFIG cluster on loopback ports, for the multi-worker test and benchmark."""
from __future__ import annotations

import json
import socket


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 now (bound together, then released, so the
    kernel hands out different ones; another process may still take one before it is used)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def chief_and_worker_tf_configs() -> list[str]:
    """TF_CONFIG JSON strings of a chief and one worker, in the layout Vertex AI sets
    (workerpool0 is the "chief", workerpool1's replicas are "worker" 0, 1, ...)."""
    chief, worker = (f"127.0.0.1:{p}" for p in free_ports(2))
    cluster = {"chief": [chief], "worker": [worker]}
    return [json.dumps({"cluster": cluster, "task": {"type": t, "index": 0}})
            for t in ("chief", "worker")]
