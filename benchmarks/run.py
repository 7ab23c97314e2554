"""Benchmark runner: brillo vs the bare ASGI ceiling vs Starlette 1.10.

Run it through ``scripts/bench`` (which builds .venv-bench). Every variant is served by the same
uvicorn command pinned to CPU 0; every load client is pinned to CPU 1. Variants are interleaved
(A B C A B C ...) over several rounds and the medians are reported, with the ratio of each variant
to the bare app and to Starlette, the server's CPU time per message (psutil, measured over the
same window as the throughput) and the load client's own CPU utilisation.

Results go to ``benchmarks/results/latest.json`` and into ``docs/benchmarks.md`` between the
``<!-- results:start -->`` / ``<!-- results:end -->`` markers.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "benchmarks.md"
START_MARK = "<!-- results:start -->"
END_MARK = "<!-- results:end -->"
SERVER_CPU = "0"
CLIENT_CPU = "1"
PY = sys.executable
NICE: list[str] = []  # e.g. ["nice", "-n", "-10"] with --nice -10

VARIANTS = {
    "bare": "benchmarks.apps.bare:app",
    "starlette": "benchmarks.apps.starlette_app:app",
    "brillo": "benchmarks.apps.brillo_app:app",
}
PORTS = {"bare": 18011, "starlette": 18012, "brillo": 18013}

# scenario -> (metric used for ratios and targets, brillo/bare target)
TARGETS: dict[str, float] = {
    "ws_echo": 0.95,
    "ws_json": 0.95,
    "ws_connect": 0.97,
    "fanout_1000": 0.90,
    "fanout_5000": 0.90,
    "fanout_lockstep_1000": 0.90,
    "fanout_lockstep_5000": 0.90,
    "http_plaintext": 0.85,
    "http_json": 0.85,
}
# scenario -> most server CPU per delivery brillo may spend, relative to bare's (issue 15)
CPU_TARGETS: dict[str, float] = {
    "fanout_1000": 1.10,
    "fanout_5000": 1.10,
    "fanout_lockstep_1000": 1.10,
    "fanout_lockstep_5000": 1.10,
}
ALL_SCENARIOS = [
    "ws_echo",
    "ws_json",
    "ws_connect",
    "fanout_1000",
    "fanout_5000",
    "fanout_stall",
    "fanout_lockstep_1000",
    "fanout_lockstep_5000",
    "memory",
    "http_plaintext",
    "http_json",
    "routing",
    "multiprocess",
    "servers",
]


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- processes -------------------------------------------------------------------------------


#: How each server is started: label -> (app target, port, workers) -> argv after the python.
#: "uvicorn" (websockets' legacy protocol) is the one the main tables use.
SERVER_KINDS: dict[str, Callable[[str, int, int], list[str]]] = {
    "uvicorn": lambda app, port, workers: [
        "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
        "--http", "httptools", "--ws", "websockets", "--workers", str(workers),
        "--log-level", "warning", "--no-access-log",
    ],
    "uvicorn-sansio": lambda app, port, workers: [
        "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
        "--http", "httptools", "--ws", "websockets-sansio", "--workers", str(workers),
        "--log-level", "warning", "--no-access-log",
    ],
    "uvicorn-wsproto": lambda app, port, workers: [
        "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
        "--http", "httptools", "--ws", "wsproto", "--workers", str(workers),
        "--log-level", "warning", "--no-access-log",
    ],
    "hypercorn": lambda app, port, workers: [
        "-m", "hypercorn", app, "--bind", f"127.0.0.1:{port}", "--worker-class", "uvloop",
        "--workers", str(workers), "--log-level", "warning", "--backlog", "4096",
    ],
    # granian admits at most --backpressure concurrent connections per worker (default
    # backlog / workers = 1,024): raised so the 5,000-member rooms fit.
    "granian": lambda app, port, workers: [
        "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--loop", "uvloop", "--backlog", "4096",
        "--backpressure", "20000", "--log-level", "warning", "--no-access-log", app,
    ],
}  # fmt: skip

#: What ``server()`` starts: the matrix and the multi-process runs change it around their calls.
SERVER_OPTIONS: dict[str, Any] = {"kind": "uvicorn", "workers": 1, "env": {}}


class Server:
    """One server (uvicorn by default) serving one variant, pinned to the server CPU.

    CPU time and RSS are those of the whole process tree (the workers of a multi-process server
    and the backend service, when ``extra_pids`` names it).
    """

    def __init__(
        self,
        variant: str,
        kind: str = "uvicorn",
        workers: int = 1,
        env: dict[str, str] | None = None,
        extra_pids: list[int] | None = None,
    ) -> None:
        self.variant = variant
        self.kind = kind
        self.port = PORTS[variant]
        cmd = [*NICE, "taskset", "-c", SERVER_CPU, PY]
        cmd += SERVER_KINDS[kind](VARIANTS[variant], self.port, workers)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**bench_env(), **(env or {})},
            start_new_session=True,
        )
        self.ps = psutil.Process(self.proc.pid)
        self.extra = [psutil.Process(pid) for pid in extra_pids or []]
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"{variant} server exited: {self.output()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{variant} server did not listen on {self.port}")
            time.sleep(0.05)
        if workers > 1:  # every worker up (each answers on the shared socket when ready)
            deadline = time.monotonic() + 30
            while len(self.ps.children(recursive=True)) < workers:
                if time.monotonic() > deadline:
                    raise BenchError(f"{variant}: fewer than {workers} workers started")
                time.sleep(0.05)
            time.sleep(1.0)

    def server_processes(self) -> list[psutil.Process]:
        out = [self.ps]
        with contextlib.suppress(psutil.Error):
            out += self.ps.children(recursive=True)
        return out

    def processes(self) -> list[psutil.Process]:
        return self.server_processes() + self.extra_tree()

    def extra_tree(self) -> list[psutil.Process]:
        out = []
        for extra in self.extra:
            out.append(extra)
            with contextlib.suppress(psutil.Error):
                out += extra.children(recursive=True)
        return out

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-2000:]

    def cpu(self) -> float:
        total = 0.0
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system
        return total

    def mark(self) -> tuple[float, ...]:
        return (
            self.cpu(),
            busy_time_of_cpu(SERVER_CPU),
            busy_time_of_cpu(CLIENT_CPU),
            time.perf_counter(),
        )

    def since(self, mark: tuple[float, ...]) -> tuple[float, float, float]:
        """Server CPU seconds since ``mark``; the share of the server's core that other processes
        took meanwhile (interference from outside the benchmark); how busy the client core was
        (the caller subtracts its clients' own share)."""
        cpu = self.cpu() - mark[0]
        wall = time.perf_counter() - mark[3]
        if wall <= 0:
            return cpu, 0.0, 0.0
        others = (busy_time_of_cpu(SERVER_CPU) - mark[1] - cpu) / wall
        busy1 = (busy_time_of_cpu(CLIENT_CPU) - mark[2]) / wall
        return cpu, max(0.0, others), busy1

    def rss(self) -> int:
        """Resident memory of the server's processes (a backend service left out)."""
        total = 0
        for proc in self.server_processes():
            with contextlib.suppress(psutil.Error):
                total += int(proc.memory_info().rss)
        return total

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(8)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers left behind, if any
        self.log.close()


@contextlib.contextmanager
def server(variant: str) -> Iterator[Server]:
    srv = Server(
        variant,
        SERVER_OPTIONS["kind"],
        SERVER_OPTIONS["workers"],
        SERVER_OPTIONS["env"],
        SERVER_OPTIONS.get("extra_pids"),
    )
    try:
        yield srv
    finally:
        srv.stop()


def busy_time_of_cpu(cpu: str) -> float:
    """Seconds one CPU spent running processes (user, nice, system; not interrupts)."""
    t = psutil.cpu_times(percpu=True)[int(cpu)]
    return float(t.user + t.nice + t.system)


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Client:
    """A load-client process (benchmarks.client) pinned to the client CPU."""

    def __init__(self, mode: str, port: int, **opts: Any) -> None:
        cmd = [*NICE, "taskset", "-c", CLIENT_CPU, PY, "-m", "benchmarks.client", mode]
        cmd += ["--port", str(port)]
        for key, value in opts.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                cmd.append(flag)
            elif value not in (False, None):
                cmd += [flag, str(value)]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=bench_env(),
            bufsize=0,
        )
        self.buf = b""

    def event(self, timeout: float) -> dict[str, Any]:
        ev = self.poll_event(timeout)
        if ev is None:
            raise BenchError(f"client timed out; stderr: {self.stderr()}")
        return ev

    def poll_event(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise BenchError(f"client exited; stderr: {self.stderr()}")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def expect(self, name: str, timeout: float) -> dict[str, Any]:
        ev = self.event(timeout)
        if ev.get("event") != name:
            raise BenchError(f"expected {name}, got {ev}")
        return ev

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write(line.encode() + b"\n")

    def stderr(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")[-1500:]

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --- scenarios -------------------------------------------------------------------------------


def closed_loop(cfg: Config, variant: str, mode: str) -> dict[str, Any]:
    with server(variant) as srv:
        cl = Client(mode, srv.port, conns=50, duration=cfg.duration, warmup=cfg.warmup)
        try:
            cl.expect("ready", 60)
            c0 = srv.mark()
            cl.say("go")
            cl.expect("stop", cfg.duration + 30)
            cpu, other, busy1 = srv.since(c0)
            res = cl.expect("result", 30)
        finally:
            cl.close()
    if res["errors"]:
        raise BenchError(f"{variant} {mode}: {res['errors']} wrong replies")
    return {
        "rate": res["rate"],
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
        "server_cpu_us": cpu / max(1, res["messages"]) * 1e6,
        "server_util": cpu / res["wall_s"],
        "other_cpu0": other,
        "client_util": res["client_util"],
        "other_cpu1": max(0.0, busy1 - (res["client_util"])),
    }


def ws_echo(cfg: Config, variant: str) -> dict[str, Any]:
    return closed_loop(cfg, variant, "echo")


def ws_json(cfg: Config, variant: str) -> dict[str, Any]:
    return closed_loop(cfg, variant, "json")


def ws_connect(cfg: Config, variant: str) -> dict[str, Any]:
    with server(variant) as srv:
        cl = Client("connect", srv.port, conns=16, duration=cfg.duration, warmup=cfg.warmup)
        try:
            cl.expect("ready", 60)
            c0 = srv.mark()
            cl.say("go")
            cl.expect("stop", cfg.duration + 30)
            cpu, other, busy1 = srv.since(c0)
            res = cl.expect("result", 60)
        finally:
            cl.close()
    return {
        "rate": res["rate"],
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
        "errors": res["errors"],
        "server_cpu_us": cpu / max(1, res["connections_done"]) * 1e6,
        "server_util": cpu / res["wall_s"],
        "other_cpu0": other,
        "client_util": res["client_util"],
        "other_cpu1": max(0.0, busy1 - (res["client_util"])),
    }


def fanout(cfg: Config, variant: str, members: int, stall: bool) -> dict[str, Any]:
    procs = cfg.fanout_procs
    broadcasts = cfg.broadcasts_1k if members <= 1000 else cfg.broadcasts_5k
    tmp = Path(tempfile.mkdtemp(prefix="brillo-bench-"))
    receivers: list[Client] = []
    pub: Client | None = None
    try:
        with server(variant) as srv:
            share = [members // procs + (i < members % procs) for i in range(procs)]
            pub = Client(
                "fanout-pub",
                srv.port,
                broadcasts=broadcasts,
                window=cfg.window,
                size=cfg.payload,
                duration=cfg.fanout_timeout,
                stall=stall,
            )
            # the stalled client (filled first) joins before the receivers, the publisher after
            pub.expect("filled", 60)
            for i, n in enumerate(share):
                receivers.append(
                    Client(
                        "fanout-recv",
                        srv.port,
                        conns=n,
                        duration=cfg.fanout_timeout,
                        lat_file=tmp / f"lat{i}",
                    )
                )
            for r in receivers:
                r.expect("ready", 120)
            pub.say("join")
            pub.expect("ready", 30)
            c0 = srv.mark()
            for r in receivers:
                r.say("go")
            pub.say("go")
            pub.expect("stop", cfg.fanout_timeout + 30)
            cpu, other, busy1 = srv.since(c0)
            pres = pub.expect("result", 30)
            # receivers end on the end marker; a blocked room never delivers it, so tell them
            deadline = time.monotonic() + 5
            rres = []
            for r in receivers:
                ev = r.poll_event(max(0.1, deadline - time.monotonic()))
                if ev is None:
                    r.say("stop")
                    ev = r.event(30)
                if ev.get("event") != "stop":
                    raise BenchError(f"expected stop, got {ev}")
                rres.append(r.expect("result", 60))
    finally:
        for c in [*receivers, *([pub] if pub else [])]:
            c.say("stop")
            c.close()
    lat: array.array[int] = array.array("q")
    for i in range(procs):
        path = tmp / f"lat{i}"
        if path.exists():
            lat.frombytes(path.read_bytes())
    shutil.rmtree(tmp, ignore_errors=True)
    deliveries = sum(r["deliveries"] for r in rres)
    if pres["blocked"]:
        window_s = pres["wall_s"]
    else:
        last = max([pres["last_own_ns"], *[r["last_ns"] for r in rres]])
        window_s = (last - pres["first_send_ns"]) / 1e9
    client_cpu = pres["client_cpu_s"] + sum(r["client_cpu_s"] for r in rres)
    ordered = sorted(lat)
    n = len(ordered)
    return {
        "rate": deliveries / window_s if window_s > 0 else 0.0,
        "p50_ms": ordered[n // 2] / 1e6 if n else float("nan"),
        "p99_ms": ordered[min(n - 1, n * 99 // 100)] / 1e6 if n else float("nan"),
        "deliveries": deliveries,
        "expected": pres["sent"] * members,
        "broadcasts": pres["sent"],
        "blocked": pres["blocked"],
        "server_cpu_us": cpu / deliveries * 1e6 if deliveries else float("nan"),
        "server_util": cpu / max(1e-9, pres["wall_s"]),
        "other_cpu0": other,
        "client_util": client_cpu / max(1e-9, pres["wall_s"]),
        "other_cpu1": max(0.0, busy1 - (client_cpu / max(1e-9, pres["wall_s"]))),
    }


def fanout_1000(cfg: Config, variant: str) -> dict[str, Any]:
    return fanout(cfg, variant, 1000, stall=False)


def fanout_5000(cfg: Config, variant: str) -> dict[str, Any]:
    return fanout(cfg, variant, cfg.big_room, stall=False)


def fanout_stall(cfg: Config, variant: str) -> dict[str, Any]:
    return fanout(cfg, variant, 1000, stall=True)


def fanout_acked(
    cfg: Config, variant: str, members: int, window: int, broadcasts: int
) -> dict[str, Any]:
    """Fan-out paced by the receivers: at most ``window`` broadcasts not yet received by every
    member (1: lockstep, message k+1 is published once message k reached every member).

    Also reports the server tree's RSS growth per member connection (``kib_per_member``).
    """
    procs = max(cfg.fanout_procs, -(-members // 5000))  # at most 5,000 clients per process
    tmp = Path(tempfile.mkdtemp(prefix="brillo-bench-"))
    receivers: list[Client] = []
    pub: Client | None = None
    try:
        with server(variant) as srv:
            share = [members // procs + (i < members % procs) for i in range(procs)]
            pub = Client(
                "fanout-acked-pub",
                srv.port,
                broadcasts=broadcasts,
                window=window,
                size=cfg.payload,
                duration=cfg.fanout_timeout,
                procs=procs,
                block_timeout=10 + members // 500,
            )
            ack_port = pub.expect("filled", 60)["ack_port"]
            time.sleep(0.3)
            rss0 = srv.rss()
            for i, n in enumerate(share):
                receivers.append(
                    Client(
                        "fanout-acking-recv",
                        srv.port,
                        conns=n,
                        duration=cfg.fanout_timeout,
                        lat_file=tmp / f"lat{i}",
                        ack_port=ack_port,
                    )
                )
            connected = sum(r.expect("ready", 300)["connections"] for r in receivers)
            if connected < members:
                raise BenchError(f"only {connected}/{members} members connected")
            time.sleep(1.0)
            pub.say("join")
            pub.expect("ready", 150)  # once a warm-up broadcast reached every member
            rss1 = srv.rss()  # every member joined and idle
            c0 = srv.mark()
            for r in receivers:
                r.say("go")
            pub.say("go")
            pub.expect("stop", cfg.fanout_timeout + 30)
            cpu, other, busy1 = srv.since(c0)
            pres = pub.expect("result", 30)
            deadline = time.monotonic() + 5
            rres = []
            for r in receivers:
                ev = r.poll_event(max(0.1, deadline - time.monotonic()))
                if ev is None:
                    r.say("stop")
                    ev = r.event(30)
                if ev.get("event") != "stop":
                    raise BenchError(f"expected stop, got {ev}")
                rres.append(r.expect("result", 60))
    finally:
        for c in [*receivers, *([pub] if pub else [])]:
            c.say("stop")
            c.close()
    lat: array.array[int] = array.array("q")
    for i in range(procs):
        path = tmp / f"lat{i}"
        if path.exists():
            lat.frombytes(path.read_bytes())
    shutil.rmtree(tmp, ignore_errors=True)
    if pres["blocked"]:
        raise BenchError(
            f"{variant}: {pres['complete']}/{pres['sent']} broadcasts reached every member"
        )
    deliveries = sum(r["deliveries"] for r in rres)
    window_s = (pres["last_own_ns"] - pres["first_send_ns"]) / 1e9
    client_cpu = pres["client_cpu_s"] + sum(r["client_cpu_s"] for r in rres)
    ordered = sorted(lat)
    n = len(ordered)
    return {
        "rate": deliveries / window_s if window_s > 0 else 0.0,
        "p50_ms": ordered[n // 2] / 1e6 if n else float("nan"),
        "p99_ms": ordered[min(n - 1, n * 99 // 100)] / 1e6 if n else float("nan"),
        "deliveries": deliveries,
        "expected": pres["sent"] * members,
        "broadcasts": pres["sent"],
        "blocked": False,
        "kib_per_member": (rss1 - rss0) / members / 1024,
        "server_cpu_us": cpu / deliveries * 1e6 if deliveries else float("nan"),
        "server_util": cpu / max(1e-9, pres["wall_s"]),
        "other_cpu0": other,
        "client_util": client_cpu / max(1e-9, pres["wall_s"]),
        "other_cpu1": max(0.0, busy1 - (client_cpu / max(1e-9, pres["wall_s"]))),
    }


def fanout_lockstep_1000(cfg: Config, variant: str) -> dict[str, Any]:
    return fanout_acked(cfg, variant, 1000, 1, cfg.lockstep_1k)


def fanout_lockstep_5000(cfg: Config, variant: str) -> dict[str, Any]:
    return fanout_acked(cfg, variant, cfg.big_room, 1, cfg.lockstep_5k)


def memory(cfg: Config, variant: str) -> dict[str, Any]:
    n = cfg.idle_conns
    with server(variant) as srv:
        warm = Client("idle", srv.port, conns=20)
        warm.expect("ready", 30)
        warm.say("stop")
        warm.expect("stop", 10)
        warm.close()
        time.sleep(0.5)
        rss0 = srv.rss()
        procs = [Client("idle", srv.port, conns=n // 2), Client("idle", srv.port, conns=n - n // 2)]
        try:
            got = sum(p.expect("ready", 120)["connections"] for p in procs)
            time.sleep(1.0)
            rss1 = srv.rss()
        finally:
            for p in procs:
                p.say("stop")
                p.close()
    if got < n:
        raise BenchError(f"only {got}/{n} idle connections opened")
    return {
        "rate": (rss1 - rss0) / n / 1024,  # KiB per connection ("rate" keeps tables uniform)
        "rss_empty_mib": rss0 / 2**20,
        "rss_loaded_mib": rss1 / 2**20,
        "connections": n,
    }


WRK_LINE = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_PCT = re.compile(r"^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def http(cfg: Config, variant: str, path: str) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed (scripts/bench installs it with apt-get)")
    with server(variant) as srv:
        url = f"http://127.0.0.1:{srv.port}{path}"
        base = [*NICE, "taskset", "-c", CLIENT_CPU, wrk, "-t1", "-c50", "--latency"]
        subprocess.run([*base, "-d1s", url], capture_output=True, timeout=30, check=True)
        c0 = srv.mark()
        w0 = time.perf_counter()
        proc = subprocess.Popen(
            [*base, f"-d{int(cfg.duration)}s", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - w0
        cpu, other, busy1 = srv.since(c0)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        proc.returncode = os.waitstatus_to_exitcode(status)
    m = WRK_LINE.search(out)
    if not m or proc.returncode != 0:
        raise BenchError(f"wrk failed: {out[-500:]}")
    if "Non-2xx" in out or "Socket errors" in out:
        raise BenchError(f"wrk saw errors: {out[-500:]}")
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    pct = {p: float(v) * scale[u] for p, v, u in WRK_PCT.findall(out)}
    rate = float(m.group(1))
    return {
        "rate": rate,
        "p50_ms": pct.get("50", float("nan")),
        "p99_ms": pct.get("99", float("nan")),
        "server_cpu_us": cpu / max(1.0, rate * wall) * 1e6,
        "server_util": cpu / wall,
        "other_cpu0": other,
        "client_util": (usage.ru_utime + usage.ru_stime) / wall,
        "other_cpu1": max(0.0, busy1 - ((usage.ru_utime + usage.ru_stime) / wall)),
    }


def http_plaintext(cfg: Config, variant: str) -> dict[str, Any]:
    return http(cfg, variant, "/plaintext")


def http_json(cfg: Config, variant: str) -> dict[str, Any]:
    return http(cfg, variant, "/json")


SCENARIOS: dict[str, Callable[[Config, str], dict[str, Any]]] = {
    "ws_echo": ws_echo,
    "ws_json": ws_json,
    "ws_connect": ws_connect,
    "fanout_1000": fanout_1000,
    "fanout_5000": fanout_5000,
    "fanout_stall": fanout_stall,
    "fanout_lockstep_1000": fanout_lockstep_1000,
    "fanout_lockstep_5000": fanout_lockstep_5000,
    "memory": memory,
    "http_plaintext": http_plaintext,
    "http_json": http_json,
}
# the stalled-client scenario compares brillo with the bare ceiling (Starlette's loop blocks
# exactly like bare's); it runs for those two only
SCENARIO_VARIANTS = {"fanout_stall": ["bare", "brillo"]}


# --- multi-process fan-out: N workers sharing one backend --------------------------------------

#: (backend, workers) configurations of the multi-process runs; memory only with one worker.
MULTI_CONFIGS = [
    ("memory", 1),
    ("redis", 1),
    ("redis", 2),
    ("redis", 4),
    ("postgres", 1),
    ("postgres", 2),
    ("postgres", 4),
]


def run_multiprocess(cfg: Config) -> dict[str, Any]:
    """brillo's fan-out with N uvicorn workers sharing a backend, M members spread over them.

    One publisher (a member too) sends 256-byte JSON messages, at most ``multi_window`` of them
    not yet received by every member; each reaches every member through the backend. The
    backend service runs on the server CPU with the workers, and its CPU time counts as
    server CPU.
    """
    from benchmarks.services import PostgresService, RedisService

    out: dict[str, Any] = {"window": cfg.multi_window, "rows": [], "errors": []}
    for members in cfg.multi_members:
        broadcasts = max(10, cfg.multi_deliveries // members)
        for backend, workers in MULTI_CONFIGS:
            label = f"{backend} x{workers} workers, {members:,} members"
            for rnd in range(cfg.multi_rounds):
                service: Any = None
                try:
                    env = {"BRILLO_BENCH_HUB": "memory://"}
                    if backend == "redis":
                        service = RedisService(SERVER_CPU)
                        env["BRILLO_BENCH_HUB"] = service.url
                    elif backend == "postgres":
                        service = PostgresService(SERVER_CPU)
                        env["BRILLO_BENCH_HUB"] = service.url
                    SERVER_OPTIONS.update(
                        kind="uvicorn",
                        workers=workers,
                        env=env,
                        extra_pids=service.pids() if service else None,
                    )
                    res = fanout_acked(cfg, "brillo", members, cfg.multi_window, broadcasts)
                except (BenchError, RuntimeError, OSError) as exc:
                    log(f"multiprocess {label} round {rnd + 1}: FAILED: {exc}")
                    out["errors"].append(f"{label}: {str(exc)[:300]}")
                    continue
                finally:
                    SERVER_OPTIONS.update(kind="uvicorn", workers=1, env={}, extra_pids=None)
                    if service is not None:
                        service.stop()
                res.update(backend=backend, workers=workers, members=members, round=rnd + 1)
                out["rows"].append(res)
                log(
                    f"multiprocess {label} round {rnd + 1}: {res['rate']:,.0f} deliveries/s, "
                    f"p99 {res['p99_ms']:.1f} ms, {res['server_cpu_us']:.1f} µs CPU/delivery"
                )
    return out


# --- the server matrix: brillo under each server ---------------------------------------------

MATRIX_SCENARIOS = ["ws_echo", "ws_json", "ws_connect", "fanout_lockstep_1000"]

AUTOBAHN = """
import asyncio, collections, json, os, sys
import kosoku

async def main():
    try:
        return await kosoku.run_fuzzingclient(
            sys.argv[1], cases=None, exclude_cases=["12.*", "13.*"], concurrency=4
        )
    except kosoku.FailureError as exc:
        return list(exc.results)

results = asyncio.run(main())
counts = collections.Counter()
failed = []
for r in results:
    counts[r.behavior.value] += 1
    if r.behavior.value not in ("OK", "NON-STRICT", "INFORMATIONAL") or (
        r.behavior_close.value not in ("OK", "INFORMATIONAL")
    ):
        failed.append(r.case_id)
print(json.dumps({"cases": len(results), "verdicts": dict(counts), "failed": failed}))
sys.stdout.flush()
os._exit(0)
"""


def autobahn(kind: str) -> dict[str, Any]:
    """Autobahn (kosoku, every case but permessage-deflate's) against brillo's echo."""
    saved = VARIANTS["brillo"]
    VARIANTS["brillo"] = "benchmarks.apps.autobahn_app:app"
    try:
        with server("brillo") as srv:
            proc = subprocess.run(
                [PY, "-c", AUTOBAHN, f"ws://127.0.0.1:{srv.port}"],
                capture_output=True,
                text=True,
                timeout=600,
                env=bench_env(),
                cwd=ROOT,
            )
    finally:
        VARIANTS["brillo"] = saved
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"error": (proc.stderr or "no output")[-300:]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _ws_handshake(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            raise OSError("closed during the handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise OSError(f"handshake refused: {head[:60]!r}")
    return sock


def _close_code(sock: socket.socket, timeout: float) -> str:
    """Read until the server closes: its close code, or how the connection ended."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) >= 4 and data[0] & 0x0F == 0x8:
                return str(int.from_bytes(data[2:4], "big"))
            if len(data) > 2 and data[0] & 0x0F in (0x1, 0x2):
                return "echoed"
    except TimeoutError:
        return f"no answer in {timeout:.0f} s"
    except OSError as exc:
        return f"reset ({type(exc).__name__})"
    return "dropped without a close frame"


#: How long the half-a-request probe waits for the server to give up on the client.
SLOW_HEADER_WAIT = 20.0


def abuse(kind: str) -> dict[str, str]:
    """Two probes of what a hostile client can do to one server, with its default settings."""
    out: dict[str, str] = {}
    with server("brillo") as srv:
        # a 20 MiB message: refused (1009) or taken whole into memory
        try:
            sock = _ws_handshake(srv.port, "/ws/echo")
            size = 20 * 2**20
            header = bytes([0x81, 0xFF]) + size.to_bytes(8, "big") + b"\0\0\0\0"  # masked
            sock.sendall(header)
            chunk = b"a" * 65536
            try:
                for _ in range(size // len(chunk)):
                    sock.sendall(chunk)
            except OSError:
                pass
            out["20 MiB message"] = _close_code(sock, 10)
            sock.close()
        except OSError as exc:
            out["20 MiB message"] = f"error: {exc}"
        # a client that opens a connection and sends half a request, then nothing
        try:
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            sock.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            started = time.monotonic()
            sock.settimeout(SLOW_HEADER_WAIT)
            try:
                while sock.recv(4096):
                    pass
                out["half a request"] = f"closed after {time.monotonic() - started:.0f} s"
            except TimeoutError:
                out["half a request"] = f"still open after {SLOW_HEADER_WAIT:.0f} s"
            except OSError:
                out["half a request"] = f"reset after {time.monotonic() - started:.0f} s"
            sock.close()
        except OSError as exc:
            out["half a request"] = f"error: {exc}"
    return out


def run_servers(cfg: Config) -> dict[str, Any]:
    """The WebSocket scenarios for brillo under every server, then Autobahn and abuse probes."""
    out: dict[str, Any] = {"rows": {}, "autobahn": {}, "abuse": {}, "errors": []}
    for rnd in range(cfg.matrix_rounds):
        for scenario in MATRIX_SCENARIOS:
            for kind in SERVER_KINDS:
                SERVER_OPTIONS.update(kind=kind, workers=1, env={}, extra_pids=None)
                try:
                    res = SCENARIOS[scenario](cfg, "brillo")
                except BenchError as exc:
                    log(f"servers {kind} {scenario} round {rnd + 1}: FAILED: {exc}")
                    out["errors"].append(f"{kind} {scenario}: {str(exc)[:300]}")
                    continue
                finally:
                    SERVER_OPTIONS.update(kind="uvicorn")
                out["rows"].setdefault(kind, {}).setdefault(scenario, []).append(res)
                log(f"servers {kind} {scenario} round {rnd + 1}: {res['rate']:,.1f}")
    for kind in SERVER_KINDS:
        SERVER_OPTIONS.update(kind=kind)
        try:
            out["autobahn"][kind] = autobahn(kind)
            out["abuse"][kind] = abuse(kind)
        except BenchError as exc:
            out["errors"].append(f"{kind} autobahn/abuse: {str(exc)[:300]}")
        finally:
            SERVER_OPTIONS.update(kind="uvicorn")
        log(f"servers {kind}: autobahn {out['autobahn'].get(kind)}; {out['abuse'].get(kind)}")
    out["summary"] = {
        kind: {sc: median_metrics(runs) for sc, runs in per.items()}
        for kind, per in out["rows"].items()
    }
    return out


def run_routing(cfg: Config) -> dict[str, Any]:
    script = ROOT / "benchmarks" / "bench_routing.py"
    if not script.exists():
        return {"status": "absent"}
    args = [PY, str(script)]
    if cfg.quick:
        args += ["--number", "1000"]
    else:
        args += ["--number", "5000"]
    try:
        proc = subprocess.run(
            ["taskset", "-c", SERVER_CPU, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=bench_env(),
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    result: dict[str, Any] = {
        "status": "ok" if proc.returncode == 0 else f"exit {proc.returncode}",
        "output": proc.stdout[-6000:],
    }
    if proc.returncode != 0:
        result["stderr"] = proc.stderr[-2000:]
    m = re.search(r"last route costs ([\d.]+)x the first", proc.stdout)
    if m:
        result["data"] = {"last_over_first": float(m.group(1))}
    return result


# --- orchestration ---------------------------------------------------------------------------


class Config:
    def __init__(self, args: argparse.Namespace) -> None:
        self.quick = args.quick
        self.rounds = args.rounds or (1 if args.quick else 3)
        self.duration = 2.0 if args.quick else 5.0
        self.warmup = 0.5 if args.quick else 1.0
        self.fanout_procs = 2
        self.broadcasts_1k = 40 if args.quick else 150
        self.broadcasts_5k = 40
        self.lockstep_1k = 60 if args.quick else 300
        self.lockstep_5k = 20 if args.quick else 80
        self.multi_members = [1000] if args.quick else [1000, 10000]
        self.multi_window = 4
        self.multi_deliveries = 100_000 if args.quick else 400_000
        self.multi_rounds = 1 if args.quick else 2
        self.matrix_rounds = 1 if args.quick else 2
        self.window = 2
        self.payload = 256
        self.fanout_timeout = 30.0
        self.big_room = 5000
        self.idle_conns = 1000 if args.quick else 5000
        self.retries = args.retries
        self.nice = args.nice
        self.brillo_app = args.brillo_app or VARIANTS["brillo"]
        self.max_interference = 0.10
        self.retry_budget_s = 20.0 if args.quick else 180.0  # no retries after this long
        heavy = {"fanout_5000", "fanout_lockstep_5000", "multiprocess", "servers"}
        self.scenarios = args.scenario or [
            s for s in ALL_SCENARIOS if not (args.quick and s in heavy)
        ]
        self.variants = args.variant or list(VARIANTS)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


def available_variants(wanted: list[str]) -> tuple[list[str], dict[str, str]]:
    ok, skipped = [], {}
    for v in wanted:
        module = VARIANTS[v].split(":")[0]
        proc = subprocess.run(
            [PY, "-c", f"import {module} as m; print(getattr(m, 'FANOUT_IMPL', ''))"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=bench_env(),
            timeout=60,
        )
        if proc.returncode == 0:
            ok.append(v)
        else:
            skipped[v] = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"
    return ok, skipped


def interference(res: dict[str, Any]) -> float:
    """The largest share of a benchmark core (server's or client's) taken by other processes."""
    return float(max(res.get("other_cpu0", 0.0), res.get("other_cpu1", 0.0)))


def median_metrics(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in runs[0]:
        if isinstance(runs[0][key], bool):
            out[key] = any(r.get(key) for r in runs)
            continue
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        if values and not isinstance(runs[0][key], bool):
            out[key] = statistics.median(values)
        else:
            out[key] = runs[0][key] if len(runs) == 1 else [r.get(key) for r in runs]
    out["rounds"] = len(runs)
    return out


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            n: version(n)
            for n in [
                "brillo",
                "starlette",
                "uvicorn",
                "uvloop",
                "httptools",
                "websockets",
                "picows",
            ]
        },  # fmt: skip
        "wrk": wrk_version(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "git": git_rev(),
    }


def wrk_version() -> str:
    wrk = shutil.which("wrk")
    if not wrk:
        return "-"
    proc = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return text[0].split(" [")[0] if text else "?"


def git_rev() -> str:
    proc = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    rev = proc.stdout.strip() or "?"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return f"{rev} + uncommitted changes in src/" if dirty else rev


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (~2 minutes)")
    parser.add_argument("--scenario", action="append", choices=ALL_SCENARIOS)
    parser.add_argument("--variant", action="append", choices=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=0, help="default 3 (quick: 1)")
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help="measure a sample again when other processes took >10%% of the server core",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/benchmarks.md")
    parser.add_argument("--output", default=str(RESULTS / "latest.json"))
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run servers and clients at this niceness (negative needs root): on a shared "
        "machine, keeps other programs from taking the benchmark's cores",
    )
    parser.add_argument(
        "--brillo-app",
        default="",
        help="MODULE:app to benchmark as the brillo variant (e.g. a prototype of a change)",
    )
    args = parser.parse_args(argv)
    cfg = Config(args)
    if args.brillo_app:
        VARIANTS["brillo"] = args.brillo_app
    if args.nice:
        NICE[:] = ["nice", "-n", str(args.nice)]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 12000:
        log("warning: open-file limit below 12000; the 5,000-client scenarios may fail")

    variants, skipped = available_variants(cfg.variants)
    for v, why in skipped.items():
        log(f"skipping variant {v}: {why}")
    started = time.monotonic()
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    errors: dict[str, dict[str, str]] = {}
    routing: dict[str, Any] | None = None
    multiprocess: dict[str, Any] | None = None
    servers: dict[str, Any] | None = None
    for scenario in cfg.scenarios:
        if scenario == "multiprocess":
            log("multiprocess: brillo with N workers sharing a backend")
            multiprocess = run_multiprocess(cfg)
            continue
        if scenario == "servers":
            log("servers: brillo under each server")
            servers = run_servers(cfg)
            continue
        if scenario == "routing":
            log("routing: benchmarks/bench_routing.py")
            routing = run_routing(cfg)
            log(f"routing: {routing['status']}")
            continue
        raw[scenario] = {}
        names = [v for v in variants if v in SCENARIO_VARIANTS.get(scenario, variants)]
        for rnd in range(cfg.rounds):
            for variant in names:
                res = None
                for attempt in range(1 + cfg.retries):
                    try:
                        got = SCENARIOS[scenario](cfg, variant)
                    except BenchError as exc:
                        log(f"{scenario} {variant} round {rnd + 1}: FAILED: {exc}")
                        errors.setdefault(scenario, {})[variant] = str(exc)[:800]
                        break
                    got["attempts"] = attempt + 1
                    if res is None or interference(got) < interference(res):
                        res = got
                    # another program busy on the server's core spoils the sample: measure
                    # again (bounded) and keep the cleanest
                    if interference(res) <= cfg.max_interference or res.get("blocked"):
                        break  # (a blocked server idles: others take its core, as they may)
                    if attempt >= cfg.retries or time.monotonic() - started > cfg.retry_budget_s:
                        break
                    log(
                        f"{scenario} {variant} round {rnd + 1}: other processes took "
                        f"{interference(got):.0%} of a benchmark core; measuring again"
                    )
                if res is None:
                    continue
                raw[scenario].setdefault(variant, []).append(res)
                extra = ""
                if "client_util" in res:
                    extra = (
                        f" (server {res['server_util']:.0%}, client {res['client_util']:.0%},"
                        f" others on core 0 {res['other_cpu0']:.0%}, on core 1"
                        f" {res['other_cpu1']:.0%})"
                    )
                log(f"{scenario} {variant} round {rnd + 1}: {res['rate']:.1f}{extra}")
    summary = {
        s: {v: median_metrics(runs) for v, runs in per.items() if runs} for s, per in raw.items()
    }
    report = {
        "machine": machine(),
        "config": cfg.as_dict(),
        "skipped_variants": skipped,
        "elapsed_s": round(time.monotonic() - started, 1),
        "summary": summary,
        "targets": evaluate(summary, routing),
        "routing": routing,
        "multiprocess": multiprocess,
        "servers": servers,
        "errors": errors,
        "raw": raw,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    table = markdown(report)
    print(table)
    if not args.no_doc:
        write_doc(table)
    log(f"done in {report['elapsed_s']}s; wrote {out}")
    return 0


# --- reporting -------------------------------------------------------------------------------


def ratio(summary: dict[str, Any], scenario: str, a: str, b: str) -> float | None:
    try:
        return float(summary[scenario][a]["rate"]) / float(summary[scenario][b]["rate"])
    except (KeyError, ZeroDivisionError, TypeError):
        return None


def cpu_ratio(summary: dict[str, Any], scenario: str, variant: str) -> float | None:
    """Server CPU per operation of ``variant`` relative to bare's (lower is better)."""
    try:
        mine = float(summary[scenario][variant]["server_cpu_us"])
        bare = float(summary[scenario]["bare"]["server_cpu_us"])
    except (KeyError, TypeError):
        return None
    return mine / bare if bare > 0 else None


def evaluate(summary: dict[str, Any], routing: dict[str, Any] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for scenario, target in TARGETS.items():
        if scenario not in summary:
            continue
        r = ratio(summary, scenario, "brillo", "bare")
        c = cpu_ratio(summary, scenario, "brillo")
        rows.append(
            {
                "target": f"{scenario}: brillo >= {target:.2f} x bare",
                "value": None if r is None else round(r, 3),
                "met": None if r is None else r >= target,
                "cpu_per_op_vs_bare": None if c is None else round(c, 3),
                # the same target judged on server CPU per operation: throughput at saturation
                # is 1 / (CPU per op), so the ratio is bare's CPU/op over brillo's
                "met_by_cpu": None if not c else (1 / c) >= target,
            }
        )
    for scenario, limit in CPU_TARGETS.items():
        c = cpu_ratio(summary, scenario, "brillo")
        if c is None:
            continue
        rows.append(
            {
                "target": f"{scenario}: brillo server CPU per delivery <= {limit:.2f} x bare's",
                "value": round(c, 3),
                "met": c <= limit,
                "cpu_per_op_vs_bare": round(c, 3),
                "met_by_cpu": c <= limit,
            }
        )
    stall = summary.get("fanout_stall", {}).get("brillo")
    calm = summary.get("fanout_1000", {}).get("brillo")
    if stall and calm:
        rate_ok = stall["rate"] >= 0.9 * calm["rate"]
        p99_ok = stall["p99_ms"] <= 1.1 * calm["p99_ms"]
        rows.append(
            {
                "target": "fanout_stall: brillo others' rate within 10% of unstalled",
                "value": round(stall["rate"] / calm["rate"], 3),
                "met": rate_ok,
            }
        )
        rows.append(
            {
                "target": "fanout_stall: brillo others' p99 within 10% of unstalled",
                "value": round(stall["p99_ms"] / calm["p99_ms"], 3),
                "met": p99_ok,
            }
        )
    mem = summary.get("memory", {})
    if "brillo" in mem and "starlette" in mem:
        b, s = mem["brillo"]["rate"], mem["starlette"]["rate"]
        rows.append(
            {
                "target": "memory per idle connection: brillo <= starlette",
                "value": f"{b:.1f} vs {s:.1f} KiB",
                "met": b <= s * 1.02,  # 2% allowance for RSS page noise
            }
        )
    if routing and isinstance(routing.get("data"), dict):
        value = routing_ratio(routing["data"])
        if value is not None:
            rows.append(
                {
                    "target": "routing: last of 1,000 routes within 2x of the first",
                    "value": round(value, 3),
                    "met": value <= 2.0,
                }
            )
    return rows


def routing_ratio(data: dict[str, Any]) -> float | None:
    for key in ("last_over_first", "ratio", "last_first_ratio"):
        if isinstance(data.get(key), int | float):
            return float(data[key])
    first, last = data.get("first"), data.get("last")
    if isinstance(first, dict) and isinstance(last, dict):
        first, last = first.get("ns"), last.get("ns")
    if isinstance(first, int | float) and isinstance(last, int | float) and first:
        return float(last) / float(first)
    return None


UNITS = {
    "ws_echo": "messages/s",
    "ws_json": "messages/s",
    "ws_connect": "connections/s",
    "fanout_1000": "deliveries/s",
    "fanout_5000": "deliveries/s",
    "fanout_stall": "others' deliveries/s",
    "fanout_lockstep_1000": "deliveries/s",
    "fanout_lockstep_5000": "deliveries/s",
    "memory": "KiB per idle connection",
    "http_plaintext": "requests/s",
    "http_json": "requests/s",
}


def fmt(x: Any, spec: str = ",.0f") -> str:
    if isinstance(x, int | float) and x == x:
        return format(x, spec)
    return "-"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    v = m["versions"]
    cfg = report["config"]
    lines = [
        f"Run of {m['date']} (git {m['git']}), {cfg['rounds']} round(s) per variant, "
        f"{'quick' if cfg['quick'] else 'full'} mode, {report['elapsed_s']:.0f} s in all.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}; "
        f"Python {m['python']}; uvicorn {v['uvicorn']}, uvloop {v['uvloop']}, "
        f"httptools {v['httptools']}, websockets {v['websockets']}; starlette {v['starlette']}; "
        f"client picows {v['picows']}, {m['wrk']}. Server on CPU {SERVER_CPU}, clients on CPU "
        f"{CLIENT_CPU}. Load average at the end: {m['loadavg_end']}.",
        "",
    ]
    if cfg.get("brillo_app", "benchmarks.apps.brillo_app:app") != "benchmarks.apps.brillo_app:app":
        lines += [f"The brillo variant is `{cfg['brillo_app']}`.", ""]
    if report["skipped_variants"]:
        lines += [f"Skipped variants: {report['skipped_variants']}", ""]
    lines += [
        "| scenario | variant | median | p50 ms | p99 ms | vs bare | vs starlette | "
        "server CPU µs/op | CPU/op vs bare | server core busy | client CPU | "
        "others on core 0 / 1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, per in report["summary"].items():
        for variant in VARIANTS:
            if variant not in per:
                continue
            row = per[variant]
            is_mem = scenario == "memory"
            vb = ratio(report["summary"], scenario, variant, "bare")
            vs = ratio(report["summary"], scenario, variant, "starlette")
            value = fmt(row["rate"], ".1f" if is_mem else ",.0f") + " " + UNITS[scenario]
            if row.get("blocked") not in (None, False):
                value += " (blocked)"
            lines.append(
                "| "
                + " | ".join(
                    [
                        scenario,
                        variant,
                        value,
                        fmt(row.get("p50_ms"), ".2f"),
                        fmt(row.get("p99_ms"), ".2f"),
                        fmt(vb, ".2f"),
                        fmt(vs, ".2f"),
                        fmt(row.get("server_cpu_us"), ".1f"),
                        fmt(cpu_ratio(report["summary"], scenario, variant), ".2f"),
                        fmt(row.get("server_util"), ".0%"),
                        fmt(row.get("client_util"), ".0%"),
                        fmt(row.get("other_cpu0"), ".0%")
                        + " / "
                        + fmt(row.get("other_cpu1"), ".0%"),
                    ]
                )
                + " |"
            )
    lines += [
        "",
        "| target | value | met? | brillo server CPU/op vs bare | met by CPU/op? |",
        "|---|---:|:---:|---:|:---:|",
    ]
    verdict = {True: "met", False: "**missed**", None: "n/a"}
    for t in report["targets"]:
        lines.append(
            f"| {t['target']} | {t['value']} | {verdict[t['met']]} | "
            f"{fmt(t.get('cpu_per_op_vs_bare'), '.2f')} | {verdict[t.get('met_by_cpu')]} |"
        )
    lines += multiprocess_markdown(report.get("multiprocess"))
    lines += servers_markdown(report.get("servers"))
    routing = report.get("routing")
    if routing:
        lines += ["", f"Routing (`benchmarks/bench_routing.py`): {routing['status']}"]
        if routing.get("output"):
            lines += ["", "```text", routing["output"].rstrip(), "```"]
    if report["errors"]:
        lines += ["", "Failures:", ""]
        for scenario, per in report["errors"].items():
            for variant, msg in per.items():
                lines.append(f"- {scenario} / {variant}: {msg.splitlines()[0][:300]}")
    return "\n".join(lines)


def multiprocess_markdown(multi: dict[str, Any] | None) -> list[str]:
    if not multi:
        return []
    lines = [
        "",
        f"Multi-process fan-out (`multiprocess`): brillo under `uvicorn --workers N`, one hub "
        f"backend shared by the workers, the members spread over them by the kernel, one "
        f"publisher, at most {multi['window']} broadcasts not yet received by every member. "
        "Workers and the backend service share CPU 0; server CPU counts both. Medians of "
        "the rounds.",
        "",
        "| backend | workers | members | deliveries/s | p50 ms | p99 ms | server CPU µs per "
        "delivery | KiB per member connection | server core busy | client CPU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
    for row in multi["rows"]:
        groups.setdefault((row["backend"], row["workers"], row["members"]), []).append(row)
    for (backend, workers, members), runs in groups.items():
        row = median_metrics(runs)
        lines.append(
            f"| {backend} | {workers} | {members:,} | {fmt(row['rate'])} | "
            f"{fmt(row['p50_ms'], '.2f')} | {fmt(row['p99_ms'], '.2f')} | "
            f"{fmt(row['server_cpu_us'], '.1f')} | {fmt(row['kib_per_member'], '.1f')} | "
            f"{fmt(row['server_util'], '.0%')} | {fmt(row['client_util'], '.0%')} |"
        )
    for error in multi["errors"]:
        lines.append(f"\n- failed: {error}")
    return lines


def servers_markdown(servers: dict[str, Any] | None) -> list[str]:
    if not servers:
        return []
    lines = [
        "",
        "Server matrix (`servers`): brillo's app under each server, one worker, defaults "
        "otherwise (granian's per-worker connection cap raised to 20,000). Rate, then server "
        "CPU µs per operation in brackets; Autobahn: cases passed / run (12.* and 13.*, "
        "permessage-deflate, left out), failing cases named; abuse: a 20 MiB text message "
        "(close code, or `echoed` when taken whole), and a client that sends half a request "
        "and waits.",
        "",
        "| server | ws_echo msg/s | ws_json msg/s | ws_connect conn/s | lockstep fan-out 1,000 "
        "deliveries/s | Autobahn | 20 MiB message | half a request |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for kind in SERVER_KINDS:
        per = servers.get("summary", {}).get(kind, {})
        cells = []
        for scenario in MATRIX_SCENARIOS:
            row = per.get(scenario)
            cells.append(
                "-"
                if row is None
                else f"{fmt(row['rate'])} ({fmt(row.get('server_cpu_us'), '.1f')})"
            )
        ab = servers.get("autobahn", {}).get(kind) or {}
        if "cases" in ab:
            passed = ab["cases"] - len(ab["failed"])
            verdict = f"{passed}/{ab['cases']}"
            if ab["failed"]:
                verdict += " (failing: " + ", ".join(ab["failed"][:6])
                verdict += ", ...)" if len(ab["failed"]) > 6 else ")"
        else:
            verdict = "error: " + str(ab.get("error", "not run"))[:60].replace("|", "/")
        probes = servers.get("abuse", {}).get(kind) or {}
        lines.append(
            f"| {kind} | "
            + " | ".join(cells)
            + f" | {verdict} | {probes.get('20 MiB message', '-')} | "
            + f"{probes.get('half a request', '-')} |"
        )
    for error in servers.get("errors", []):
        lines.append(f"\n- failed: {error}")
    return lines


def write_doc(table: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{START_MARK}\n{END_MARK}\n"
    if START_MARK not in text or END_MARK not in text:
        text += f"\n{START_MARK}\n{END_MARK}\n"
    head, rest = text.split(START_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(f"{head}{START_MARK}\n{table}\n{END_MARK}{tail}")


if __name__ == "__main__":
    sys.exit(main())
