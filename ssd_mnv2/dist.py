"""Distributed training helpers: a one-machine launcher for MXNet's parameter-server kvstore.

``ssd-mnv2 launch -n 2 -s 1 -- train --config C --kvstore dist_sync`` starts

* one **scheduler** and ``-s`` **servers** (``python -c "import mxnet"``: with ``DMLC_ROLE`` set
  to scheduler/server, importing MXNet runs the ps-lite node and exits when the job ends), and
* ``-n`` **workers** running the given command (an ``ssd-mnv2`` subcommand such as ``train``,
  or any program, e.g. ``python my_script.py``),

all on 127.0.0.1 with the ``DMLC_*`` variables MXNet reads (``DMLC_ROLE``, ``DMLC_PS_ROOT_URI``,
``DMLC_PS_ROOT_PORT``, ``DMLC_NUM_SERVER``, ``DMLC_NUM_WORKER``, plus ``DMLC_NODE_HOST``).
Every process gets its own process group; their output is streamed line by line with a
``[worker-0]`` / ``[server-0]`` / ``[scheduler]`` prefix.

Failure handling: the launcher polls its children every 0.1 s. When a worker exits non-zero or
dies (e.g. SIGKILL), or the scheduler or a server exits before the workers are done, it prints
a message naming that process, sends SIGTERM to every process group, SIGKILL after
``grace`` seconds, and returns non-zero. A surviving worker blocked in a kvstore push/pull
would otherwise wait forever: this is what bounds the time to failure. Children also get
``PR_SET_PDEATHSIG`` so they die if the launcher itself is killed. On success (all workers
exit 0) the scheduler and servers exit on their own; anything left after ``grace`` seconds is
terminated. No process or port is left behind in any case.

Multi-machine runs use MXNet's ``tools/launch.py`` (ssh or mpi); see ``docs/distributed.md``.
"""
from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, TextIO

__all__ = ["free_port", "port_is_free", "dmlc_env", "worker_command", "launch", "LaunchError",
           "check_dist_env", "DMLC_VARS"]

DMLC_VARS = ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT", "DMLC_NUM_SERVER",
             "DMLC_NUM_WORKER")
PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)


class LaunchError(RuntimeError):
    """The distributed job failed (a worker/server died or exited non-zero)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when no socket is bound to / listening on ``host:port`` (a new listener could bind).

    Connections of a finished job linger in TIME_WAIT for a minute; like any server
    (ps-lite sets SO_REUSEADDR too) this check ignores them.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def dmlc_env(role: str, port: int, num_workers: int, num_servers: int,
             host: str = "127.0.0.1") -> Dict[str, str]:
    """The ``DMLC_*`` variables of one ps-lite node of a job rooted at ``host:port``."""
    if role not in ("scheduler", "server", "worker"):
        raise ValueError(f"DMLC role must be scheduler, server or worker, got {role!r}")
    return {"DMLC_ROLE": role, "DMLC_PS_ROOT_URI": host, "DMLC_PS_ROOT_PORT": str(port),
            "DMLC_NUM_SERVER": str(num_servers), "DMLC_NUM_WORKER": str(num_workers),
            "DMLC_NODE_HOST": host}


def check_dist_env(kvstore: str) -> None:
    """Raise a clear error when a ``dist_*`` kvstore is used outside a launcher, or vice versa."""
    role = os.environ.get("DMLC_ROLE")
    if kvstore.startswith("dist"):
        missing = [v for v in DMLC_VARS if not os.environ.get(v)]
        if missing:
            raise RuntimeError(
                f"train.kvstore={kvstore} needs the DMLC_* environment of a distributed launcher "
                f"({', '.join(missing)} not set). Start it with `ssd-mnv2 launch -n WORKERS -s SERVERS "
                "-- train ...` on one machine, or MXNet's tools/launch.py on several (see "
                "docs/distributed.md); use --kvstore local or device for a single process.")
    elif role == "worker":
        raise RuntimeError(
            f"this process was started as a distributed worker (DMLC_ROLE=worker) but "
            f"train.kvstore={kvstore}: every worker would train its own model alone. Pass "
            "--kvstore dist_sync (or set train.kvstore: dist_sync in the config).")


def worker_command(command: Sequence[str], subcommands: Sequence[str] = ()) -> List[str]:
    """``train ...`` (one of ``subcommands``, the ssd-mnv2 subcommands) -> ``python -m
    ssd_mnv2.cli train ...``; anything else as is. The CLI passes its list of subcommands (the
    library does not import the CLI)."""
    command = list(command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise ValueError("launch: no worker command given (usage: ssd-mnv2 launch -n 2 -s 1 -- train ...)")
    if command[0] in subcommands:
        if command[0] == "launch":
            raise ValueError("launch: the worker command cannot be `launch` itself")
        return [sys.executable, "-m", "ssd_mnv2.cli"] + command
    return command


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _describe_exit(code: int) -> str:
    return f"was killed by {_signal_name(code)}" if code < 0 else f"exited with code {code}"


def _child_setup() -> None:  # runs in the child between fork and exec
    os.setsid()  # own process group (and session): the launcher can kill all of its descendants
    try:  # die with the launcher even if it is SIGKILLed (Linux only)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except Exception:  # pragma: no cover - non-Linux
        pass


@dataclass
class _Node:
    name: str
    role: str
    proc: subprocess.Popen
    reader: Optional[threading.Thread] = None
    pgid: int = 0
    lines: List[str] = field(default_factory=list)


class _Job:
    def __init__(self, out: TextIO, keep_lines: int = 200) -> None:
        self.nodes: List[_Node] = []
        self.out = out
        self.lock = threading.Lock()
        self.keep_lines = keep_lines

    def start(self, name: str, role: str, cmd: List[str], env: Dict[str, str]) -> _Node:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_child_setup, close_fds=True)
        node = _Node(name, role, proc, pgid=proc.pid)
        self.nodes.append(node)
        return node

    def stream(self, node: _Node) -> None:
        def pump() -> None:
            assert node.proc.stdout is not None
            for raw in iter(node.proc.stdout.readline, b""):
                text = raw.decode("utf-8", "replace").rstrip("\n")
                for part in text.split("\r"):  # progress bars redraw with \r
                    if not part.strip():
                        continue
                    node.lines.append(part)
                    del node.lines[:-self.keep_lines]
                    with self.lock:
                        try:
                            self.out.write(f"[{node.name}] {part}\n")
                            self.out.flush()
                        except (ValueError, OSError):  # output closed: keep draining the pipe
                            pass
            node.proc.stdout.close()

        node.reader = threading.Thread(target=pump, name=f"out-{node.name}", daemon=True)
        node.reader.start()

    def say(self, msg: str) -> None:
        with self.lock:
            print(f"[launch] {msg}", file=sys.stderr, flush=True)

    def _killpg(self, node: _Node, sig: int) -> None:
        # A process group id cannot be reused while the group still has members, so signalling
        # the group after its leader exited reaches only that child's own descendants.
        try:
            os.killpg(node.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def terminate_all(self, grace: float) -> None:
        """SIGTERM every process group, SIGKILL what is left after ``grace`` s, reap everything."""
        for n in self.nodes:
            if n.proc.poll() is None:
                self._killpg(n, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for n in self.nodes:
            try:
                n.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for n in self.nodes:  # leaders still alive, and orphaned descendants of dead leaders
            self._killpg(n, signal.SIGKILL)
        for n in self.nodes:
            n.proc.wait()
            if n.reader is not None:
                n.reader.join(timeout=5)


def launch(command: Sequence[str], num_workers: int, num_servers: int = 1,
           port: Optional[int] = None, host: str = "127.0.0.1", grace: float = 10.0,
           env: Optional[Dict[str, str]] = None, out: Optional[TextIO] = None,
           timeout: Optional[float] = None, subcommands: Sequence[str] = ()) -> int:
    """Run a parameter-server job on this machine; returns 0 or a non-zero exit code.

    ``command`` is the worker command (``["train", "--config", ...]`` when ``train`` is in
    ``subcommands``, the ssd-mnv2 subcommands, or any program).
    ``grace``: seconds between SIGTERM and SIGKILL when stopping, and how long the scheduler and
    servers may take to exit after the workers finished. ``timeout``: stop the whole job (exit
    code 124) after that many seconds (None = no limit).
    """
    if num_workers < 1:
        raise ValueError(f"launch: -n/--num-workers must be >= 1, got {num_workers}")
    if num_servers < 1:
        raise ValueError(f"launch: -s/--num-servers must be >= 1, got {num_servers}")
    cmd = worker_command(command, subcommands)
    if port is None:
        port = free_port(host)
    elif not port_is_free(port, host):
        raise ValueError(f"launch: port {port} on {host} is in use; pick another --port or omit it")
    base = dict(os.environ if env is None else env)
    base["PYTHONUNBUFFERED"] = "1"
    pp = base.get("PYTHONPATH", "")
    if PACKAGE_PARENT not in pp.split(os.pathsep):
        base["PYTHONPATH"] = PACKAGE_PARENT + (os.pathsep + pp if pp else "")
    if "OMP_NUM_THREADS" not in base:  # do not oversubscribe the cores of one machine
        base["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // num_workers))
    job = _Job(out or sys.stdout)
    ps_cmd = [sys.executable, "-c", "import mxnet"]  # ps-lite scheduler/server nodes

    stop = {"sig": 0}
    old = {}

    def on_signal(signum, frame):
        stop["sig"] = signum

    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            old[s] = signal.signal(s, on_signal)
    rc = 0
    try:
        job.say(f"scheduler on {host}:{port}, {num_servers} server(s), {num_workers} worker(s): "
                + " ".join(cmd))
        ps_env = dict(base, OMP_NUM_THREADS="1")
        nodes = [job.start("scheduler", "scheduler", ps_cmd,
                           dict(ps_env, **dmlc_env("scheduler", port, num_workers, num_servers, host)))]
        for i in range(num_servers):
            nodes.append(job.start(f"server-{i}", "server", ps_cmd,
                                   dict(ps_env, **dmlc_env("server", port, num_workers, num_servers, host))))
        for i in range(num_workers):
            nodes.append(job.start(f"worker-{i}", "worker", cmd,
                                   dict(base, **dmlc_env("worker", port, num_workers, num_servers, host))))
        for n in nodes:  # readers start after all forks (preexec_fn + threads do not mix well)
            job.stream(n)
        job.say("started " + ", ".join(f"{n.name} pid {n.proc.pid}" for n in nodes))
        workers = [n for n in nodes if n.role == "worker"]
        others = [n for n in nodes if n.role != "worker"]
        t0 = time.monotonic()
        others_done_at = None
        while True:
            if stop["sig"]:
                job.say(f"received {signal.Signals(stop['sig']).name}: stopping all processes "
                        "(continue later with --resume from the last checkpoint)")
                rc = 128 + stop["sig"]
                break
            bad = next((n for n in workers if n.proc.poll() not in (None, 0)), None)
            if bad is not None:
                code = bad.proc.returncode
                alive = [n.name for n in nodes if n is not bad and n.proc.poll() is None]
                job.say(f"FAILED: {bad.name} (pid {bad.proc.pid}) {_describe_exit(code)}; stopping "
                        f"{', '.join(alive) or 'nothing else'}. Fix the cause and restart with "
                        "--resume to continue from the last checkpoint.")
                tail = [ln for ln in bad.lines[-5:]]
                if tail:
                    job.say(f"last output of {bad.name}:\n    " + "\n    ".join(tail))
                rc = code if code > 0 else 128 - code
                break
            if all(n.proc.poll() == 0 for n in workers):
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline and any(n.proc.poll() is None for n in others):
                    time.sleep(0.05)
                left = [n.name for n in others if n.proc.poll() is None]
                if left:
                    job.say(f"workers finished; {', '.join(left)} still running after {grace:g} s: "
                            "terminating")
                job.say(f"all {num_workers} worker(s) finished successfully")
                rc = 0
                break
            # The scheduler/servers end when the workers finalise, which can be a little before the
            # last worker process has exited: a clean exit (0) is tolerated for ``grace`` seconds.
            dead = next((n for n in others if n.proc.poll() not in (None, 0)), None)
            done = [n for n in others if n.proc.poll() == 0]
            if done and others_done_at is None:
                others_done_at = time.monotonic()
            if dead is None and done and time.monotonic() - others_done_at > grace:
                dead = done[0]
            if dead is not None:
                job.say(f"FAILED: {dead.name} (pid {dead.proc.pid}) {_describe_exit(dead.proc.returncode)} "
                        "before the workers finished; stopping everything.")
                rc = 1
                break
            if timeout is not None and time.monotonic() - t0 > timeout:
                job.say(f"FAILED: the job exceeded --timeout {timeout:g} s; stopping everything.")
                rc = 124
                break
            time.sleep(0.1)
    finally:
        job.terminate_all(grace if rc == 0 else min(grace, 5.0))
        for s, h in old.items():
            signal.signal(s, h)
    return rc
