#!/usr/bin/env python3
"""A stand-in for the `docker` executable so that a real `mlcube run` works without a Docker engine.

mlcube 0.0.9's docker runner calls, through os.system:
    <docker> inspect --type=image IMAGE > /dev/null
    <docker> run [run args] --volume HOST:/mlcube_ioN[:ro] ... IMAGE TASK --key=/mlcube_ioN/... ...
`inspect` succeeds (the image "exists"); `run` maps every /mlcube_ioN path in the task arguments back
to its host path and runs `python project/mlcube.py TASK ARGS` from the repository root (the image's
ENTRYPOINT), with HOME pointed at a scratch folder as in the image. Anything else fails.

Set SHIM_LOG to a file to record each invocation's argv (one JSON list per line).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    if os.environ.get("SHIM_LOG"):
        with open(os.environ["SHIM_LOG"], "a") as log:
            log.write(json.dumps(argv) + "\n")
    if not argv:
        return 2
    if argv[0] == "inspect":
        return 0
    if argv[0] != "run":
        sys.stderr.write(f"docker shim: unsupported command {argv[0]!r}\n")
        return 1
    mounts: dict[str, str] = {}  # container path -> host path
    args = argv[1:]
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--volume", "-v"):
            spec = args[i + 1].split(":")
            mounts[spec[1]] = spec[0]
            i += 2
            continue
        if arg.startswith("--volume="):
            spec = arg.split("=", 1)[1].split(":")
            mounts[spec[1]] = spec[0]
            i += 1
            continue
        if arg.startswith("-"):  # run options such as --gpus=all --shm-size=2gb (all in --key=value form)
            i += 1
            continue
        rest = args[i + 1 :]  # args[i] is the image name
        break

    def to_host(value: str) -> str:
        for container, host in sorted(mounts.items(), key=lambda kv: -len(kv[0])):
            if value == container or value.startswith(container + "/"):
                return host + value[len(container) :]
        return value

    mapped = []
    for arg in rest:
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            mapped.append(f"{key}={to_host(value)}")
        else:
            mapped.append(to_host(arg))
    env = dict(os.environ, HOME=tempfile.mkdtemp(prefix="shim-home-"))
    command = [sys.executable, str(REPO / "project" / "mlcube.py"), *mapped]
    return subprocess.call(command, cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
