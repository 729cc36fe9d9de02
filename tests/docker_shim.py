#!/usr/bin/env python3
"""A stand-in for the `docker` executable, so that the command lines real runners build (mlcube 0.0.9,
MedPerf, the `brats` package, a BraSyn 2025 submission check) run without a Docker engine.

    <docker> inspect --type=image IMAGE
    <docker> run [options] IMAGE [COMMAND ...]

The only image is the one named in mlcube/mlcube.yaml (any other is "No such image"). `run` plays the
image: ENTRYPOINT and CMD come from the Dockerfile (no COMMAND: the CMD), the entrypoint script is
this checkout's project/mlcube.py, and every container path in the arguments that lies under a
`-v HOST:CONTAINER[:ro|rw]` mount is mapped back to its host path. Options, in `--opt value` or
`--opt=value` form:

  -v/--volume H:C[:ro|rw]  mounts; after the run the shim checks that no `:ro` mount was written to
  -u/--user UID:GID        must be the caller's own uid:gid (what MedPerf and the brats package pass)
  --network none           the container's Python cannot open an internet socket (ENETUNREACH)
  --read-only              the image's filesystem is read-only: only the mounts (and a mounted /tmp)
                           may be written; the shim checks afterwards that HOME (= /tmp in the image)
                           stayed empty when /tmp is not mounted
  --gpus X                 without it the container sees no GPU (CUDA_VISIBLE_DEVICES="")
  -e/--env K=V, --shm-size SIZE, --name NAME, --rm   honoured or accepted
Any other option fails (exit status 125, as docker does for a bad flag), so a runner passing something
new shows up here. The container's exit status is the shim's; a violated `:ro` or `--read-only` is
status 1 with a line on stderr, as the write would have failed in a real container.

Set SHIM_LOG to a file to record each invocation's argv (one JSON list per line).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRYPOINT_SCRIPT = "/mlcube_project/mlcube.py"  # the Dockerfile copies project/mlcube.py there
VALUE_OPTIONS = {"-v": "volume", "--volume": "volume", "-u": "user", "--user": "user", "--network": "network",
                 "--net": "network", "--gpus": "gpus", "-e": "env", "--env": "env", "--shm-size": "shm_size",
                 "--name": "name"}
FLAG_OPTIONS = {"--rm": "rm", "--read-only": "read_only"}
NO_NETWORK = '''import socket
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
def _refuse(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        raise OSError(101, "Network is unreachable (docker run --network none)")
def _guarded(sock, address):
    _refuse(sock, address)
    return _connect(sock, address)
def _guarded_ex(sock, address):
    _refuse(sock, address)
    return _connect_ex(sock, address)
socket.socket.connect, socket.socket.connect_ex = _guarded, _guarded_ex
'''


class UsageError(Exception):
    """A command line docker itself would refuse (status 125)."""


def image_name() -> str:
    text = (REPO / "mlcube" / "mlcube.yaml").read_text()
    return re.search(r"^\s+image:\s*(\S+)\s*$", text, flags=re.M).group(1)


def dockerfile_exec_form(keyword: str) -> list[str]:
    lines = [line for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith(f"{keyword} ")]
    return json.loads(lines[-1][len(keyword) + 1 :])


def parse_run(args: list[str]) -> tuple[dict, str, list[str]]:
    """(options, image, command) of `docker run` arguments; lists for repeatable options."""
    options: dict = {"volume": [], "env": []}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            return options, arg, args[i + 1 :]
        name, has_value, value = arg.partition("=")
        if name in FLAG_OPTIONS and not has_value:
            options[FLAG_OPTIONS[name]] = True
            i += 1
            continue
        if name not in VALUE_OPTIONS:
            raise UsageError(f"unknown flag: {name}")
        if not has_value:
            if i + 1 >= len(args):
                raise UsageError(f"flag needs an argument: {name}")
            value, i = args[i + 1], i + 2
        else:
            i += 1
        key = VALUE_OPTIONS[name]
        if key in ("volume", "env"):
            options[key].append(value)
        else:
            options[key] = value
    raise UsageError('"docker run" requires at least 1 argument')


def parse_volume(spec: str) -> tuple[str, str, bool]:
    """(host, container, read_only) of HOST:CONTAINER[:MODE]."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0].startswith("/") or not parts[1].startswith("/"):
        raise UsageError(f"invalid volume specification: {spec!r} (expected /host:/container[:ro|rw])")
    mode = parts[2] if len(parts) == 3 else "rw"
    if mode not in ("ro", "rw"):
        raise UsageError(f"invalid mode {mode!r} in volume specification {spec!r}")
    if not os.path.exists(parts[0]):
        os.makedirs(parts[0])  # docker creates a missing host folder
    return parts[0], parts[1], mode == "ro"


def tree_digest(root: str) -> dict[str, str]:
    path = Path(root)
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(path.rglob("*"))}


def run(args: list[str]) -> int:
    options, image, command = parse_run(args)
    if image != image_name():
        sys.stderr.write(f"Unable to find image '{image}' locally (the shim has only {image_name()})\n")
        return 125
    if options.get("user") and options["user"] != f"{os.getuid()}:{os.getgid()}":
        raise UsageError(f"-u {options['user']}: the shim runs only as the caller ({os.getuid()}:{os.getgid()})")
    if options.get("shm_size") and not re.fullmatch(r"\d+[bkmg]?b?", options["shm_size"], flags=re.I):
        raise UsageError(f"invalid size: {options['shm_size']!r}")
    mounts = [parse_volume(spec) for spec in options["volume"]]
    by_container = {container: host for host, container, _ in mounts}

    def to_host(value: str) -> str:
        for container, host in sorted(by_container.items(), key=lambda kv: -len(kv[0])):
            if value == container or value.startswith(container + "/"):
                return host + value[len(container) :]
        return value

    def map_arg(arg: str) -> str:
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            return f"{key}={to_host(value)}"
        return to_host(arg)

    entrypoint = dockerfile_exec_form("ENTRYPOINT")
    command = command or dockerfile_exec_form("CMD")
    assert entrypoint[1] == ENTRYPOINT_SCRIPT, entrypoint
    argv = [sys.executable, str(REPO / "project" / "mlcube.py"), *map(map_arg, command)]

    scratch = Path(tempfile.mkdtemp(prefix="shim-container-"))
    home = Path(by_container["/tmp"]) if "/tmp" in by_container else scratch / "tmp"  # the image's HOME=/tmp
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SHIM_LOG", "BRASYN_WEIGHTS")}
    env.update(HOME=str(home), TMPDIR=str(home), PYTHONDONTWRITEBYTECODE="1")
    for pair in options["env"]:
        key, _, value = pair.partition("=")
        env[key] = value
    if not options.get("gpus"):
        env["CUDA_VISIBLE_DEVICES"] = ""
    if options.get("network") == "none":
        (scratch / "no_network").mkdir()
        (scratch / "no_network" / "sitecustomize.py").write_text(NO_NETWORK)
        env["PYTHONPATH"] = str(scratch / "no_network")
    elif options.get("network") not in (None, "bridge", "host"):
        raise UsageError(f"network {options['network']} not found")

    read_only = {host: tree_digest(host) for host, _, ro in mounts if ro}
    status = subprocess.call(argv, cwd=REPO / "project", env=env)
    for host, before in read_only.items():
        if tree_digest(host) != before:
            sys.stderr.write(f"docker shim: the container wrote to {host}, mounted read-only\n")
            status = status or 1
    if options.get("read_only") and "/tmp" not in by_container and any(home.iterdir()):
        sys.stderr.write(
            f"docker shim: the container wrote {sorted(p.name for p in home.iterdir())} to /tmp"
            " on a --read-only filesystem\n"
        )
        status = status or 1
    return status


def main(argv: list[str]) -> int:
    if os.environ.get("SHIM_LOG"):
        with open(os.environ["SHIM_LOG"], "a") as log:
            log.write(json.dumps(argv) + "\n")
    try:
        if argv[:1] == ["inspect"]:
            return 0 if argv[-1] == image_name() else 1
        if argv[:1] == ["run"]:
            return run(argv[1:])
        raise UsageError(f"unsupported command {argv[:1]}")
    except UsageError as exc:
        sys.stderr.write(f"docker shim: {exc}\n")
        return 125


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
