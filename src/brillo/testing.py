"""Run an ASGI app under a real server for over-the-wire tests.

:class:`LiveServer` serves an app in a background thread with its own event loop, under uvicorn
or hypercorn, on ``127.0.0.1`` and an ephemeral port::

    with LiveServer(app) as server:
        async with websockets.connect(server.ws_url + "/ws") as ws:
            ...

:class:`LiveProcess` runs ``python -m uvicorn module:attr`` in a child process instead, for tests
that need to kill the server (``kill()`` sends SIGKILL) or run several server processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, cast

from anyio import Event as AnyioEvent
from anyio import fail_after
from anyio.lowlevel import current_token

from brillo.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LiveProcess", "LiveServer", "ServerStartupError"]

ServerName = Literal["uvicorn", "hypercorn"]
LifespanMode = Literal["auto", "on", "off"]


class ServerStartupError(RuntimeError):
    """The server did not come up: lifespan startup failed, the port was taken, or it timed out."""


def _bind(host: str, port: int, *, listen: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def _http_url(host: str, port: int, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


class _LifespanWatch:
    """Wraps the app to remember why lifespan startup failed, for a helpful error message."""

    __slots__ = ("app", "failure")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.failure: str | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                self.failure = message.get("message") or "lifespan.startup.failed"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except BaseException as exc:
            if self.failure is None:
                self.failure = f"{type(exc).__name__}: {exc}"
            raise


class _Notifier:
    """Calls back into an event loop (asyncio or trio) from the server thread, never blocking."""

    def __init__(self) -> None:
        self.ready = AnyioEvent()
        self.done = AnyioEvent()
        native = current_token().native_token
        self._call: Callable[[Callable[[], object]], object]
        if isinstance(native, asyncio.AbstractEventLoop):
            self._call = native.call_soon_threadsafe
        else:
            self._call = cast(Any, native).run_sync_soon  # a trio token

    def fire(self, event: AnyioEvent) -> None:
        try:
            self._call(event.set)
        except RuntimeError:  # the awaiting loop is gone (trio's RunFinishedError is one too)
            pass


class _Addresses:
    """What both runners share: ``port``, ``url``, ``ws_url``, and use as a ``with`` block."""

    host: str
    _port: int | None

    def start(self) -> None:
        """Start the server (subclasses)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the server (subclasses)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on (known once started)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base HTTP URL, e.g. ``http://127.0.0.1:54321``."""
        return _http_url(self.host, self.port, "http")

    @property
    def ws_url(self) -> str:
        """Base WebSocket URL, e.g. ``ws://127.0.0.1:54321``."""
        return _http_url(self.host, self.port, "ws")


class LiveServer(_Addresses):
    """Serve ``app`` under a real server (uvicorn or hypercorn) in a background thread.

    Use it as a context manager, sync (``with``) or async (``async with``). Entering starts the
    server and waits, at most ``startup_timeout`` seconds, until lifespan startup has finished and
    the socket is accepting; a startup failure raises :class:`ServerStartupError`. Leaving shuts
    the server down gracefully and joins the thread (uvicorn closes open WebSockets with 1012;
    hypercorn lets them run until its ``graceful_timeout``, 1 s here, then drops them).

    Extra keyword arguments go to ``uvicorn.Config`` or ``hypercorn.config.Config`` (as
    attributes), e.g. ``ws="wsproto"`` or ``ws_max_size=...``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        server: ServerName = "uvicorn",
        lifespan: LifespanMode = "auto",
        startup_timeout: float = 10.0,
        shutdown_timeout: float = 10.0,
        **config: Any,
    ) -> None:
        if server not in ("uvicorn", "hypercorn"):
            raise ValueError(f"server must be 'uvicorn' or 'hypercorn', not {server!r}")
        self.app = app
        self.host = host
        self.server = server
        self.lifespan = lifespan
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.config = config
        self._requested_port = port
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._watch = _LifespanWatch(app)
        self._stop: Callable[[], None] | None = None
        self._stop_lock = threading.Lock()
        self._stop_requested = False
        self._notifier: _Notifier | None = None
        self._started = False

    # -- addresses ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- lifecycle ---------------------------------------------------------------------------

    def _begin(self) -> None:
        if self._thread is not None:
            raise RuntimeError("LiveServer can only be started once")
        sock = _bind(self.host, self._requested_port, listen=False)
        self._port = sock.getsockname()[1]
        target = self._run_uvicorn if self.server == "uvicorn" else self._run_hypercorn
        self._thread = threading.Thread(
            target=self._thread_main,
            args=(target, sock),
            name=f"brillo-live-{self.server}-{self._port}",
            daemon=True,
        )
        self._thread.start()

    def _thread_main(self, target: Callable[[socket.socket], None], sock: socket.socket) -> None:
        try:
            target(sock)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
        finally:
            sock.close()
            self._ready.set()
            if self._notifier is not None:
                self._notifier.fire(self._notifier.ready)
                self._notifier.fire(self._notifier.done)

    def _mark_ready(self) -> None:
        self._started = True
        self._ready.set()
        if self._notifier is not None:
            self._notifier.fire(self._notifier.ready)

    def _startup_error(self) -> ServerStartupError:
        exc = self._error
        if self._watch.failure is not None:
            detail = f"lifespan startup failed: {self._watch.failure}"
        elif isinstance(exc, SystemExit):
            detail = f"{self.server} exited during startup (exit code {exc.code})"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return ServerStartupError(f"{self.server} did not start: {detail}")

    def _check_started(self) -> None:
        if self._error is not None or not self._started:
            error = self._startup_error()
            self._join(self.shutdown_timeout)
            raise error from self._error

    def start(self) -> None:
        """Start the server and block until it accepts connections (or raise)."""
        self._begin()
        if not self._ready.wait(self.startup_timeout):
            self.stop()
            raise ServerStartupError(f"{self.server} did not start within {self.startup_timeout} s")
        self._check_started()

    def stop(self) -> None:
        """Ask the server to shut down gracefully and wait (bounded) for its thread to end."""
        self._request_stop()
        self._join(self.shutdown_timeout)

    def _request_stop(self) -> None:
        with self._stop_lock:
            self._stop_requested = True
            stop = self._stop
        if stop is not None:
            stop()

    def _join(self, timeout: float) -> None:
        if self._thread is None:
            return
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"{self.server} did not stop within {timeout} s")

    async def __aenter__(self) -> Self:
        self._notifier = _Notifier()
        self._begin()
        try:
            with fail_after(self.startup_timeout):
                await self._notifier.ready.wait()
        except TimeoutError:
            await self._astop()
            raise ServerStartupError(
                f"{self.server} did not start within {self.startup_timeout} s"
            ) from None
        if self._error is not None or not self._started:
            await self._astop()
            raise self._startup_error() from self._error
        return self

    async def _astop(self) -> None:
        assert self._notifier is not None
        self._request_stop()
        if self.running:
            with fail_after(self.shutdown_timeout):
                await self._notifier.done.wait()
        self._join(self.shutdown_timeout)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._astop()

    # -- servers -----------------------------------------------------------------------------

    def _run_uvicorn(self, sock: socket.socket) -> None:
        import uvicorn

        outer = self

        class _Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    outer._mark_ready()

        options: dict[str, Any] = {"log_level": "warning", "timeout_graceful_shutdown": 5}
        options.update(self.config)
        config = uvicorn.Config(self._watch, lifespan=self.lifespan, **options)
        server = _Server(config)

        def stop() -> None:
            server.should_exit = True

        with self._stop_lock:
            self._stop = stop
            if self._stop_requested:
                return
        server.run(sockets=[sock])
        if not server.started:
            raise self._startup_error()

    def _run_hypercorn(self, sock: socket.socket) -> None:
        from hypercorn.asyncio.run import worker_serve
        from hypercorn.config import Config, Sockets
        from hypercorn.utils import wrap_app

        config = Config()
        config.loglevel = "WARNING"
        config.graceful_timeout = 1  # hypercorn leaves open WebSockets to time out
        for key, value in self.config.items():
            if not hasattr(config, key):
                raise TypeError(f"unknown hypercorn config option {key!r}")
            setattr(config, key, value)
        app: ASGIApp = self._watch
        if self.lifespan == "off":
            app = _NoLifespan(self._watch)

        async def main() -> None:
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()

            def stop() -> None:
                with contextlib.suppress(RuntimeError):  # the loop may have just closed
                    loop.call_soon_threadsafe(stopping.set)

            with self._stop_lock:
                self._stop = stop
                if self._stop_requested:
                    return

            async def shutdown_trigger() -> None:
                # hypercorn awaits this only once lifespan startup is done and it is listening.
                self._mark_ready()
                await stopping.wait()

            await worker_serve(
                wrap_app(cast(Any, app), config.wsgi_max_body_size, "asgi"),
                config,
                sockets=Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[]),
                shutdown_trigger=shutdown_trigger,
            )

        try:
            asyncio.run(main())
        finally:
            with self._stop_lock:
                self._stop = None

    @classmethod
    def subprocess(cls, target: str, **kwargs: Any) -> LiveProcess:
        """A :class:`LiveProcess` running ``python -m uvicorn target`` (not yet started)."""
        return LiveProcess(target, **kwargs)


class _NoLifespan:
    """Answers the lifespan protocol as an app without lifespan support would (for hypercorn)."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("lifespan disabled by LiveServer(lifespan='off')")
        await self.app(scope, receive, send)


class LiveProcess(_Addresses):
    """Run ``python -m uvicorn target`` in a child process on 127.0.0.1.

    ``target`` is ``"module:attr"`` (add ``factory=True`` for a factory). The parent binds the
    socket and hands it to uvicorn (``--fd``), so the port is known up front and the same port
    can be reused after a restart (pass ``port=``). :meth:`start` waits until the child listens
    (which uvicorn does only after lifespan startup); :meth:`kill` sends SIGKILL; :meth:`stop`
    sends SIGTERM and waits for a graceful exit.
    """

    def __init__(
        self,
        target: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        lifespan: LifespanMode = "auto",
        factory: bool = False,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        startup_timeout: float = 15.0,
        shutdown_timeout: float = 10.0,
        log_level: str = "warning",
    ) -> None:
        self.target = target
        self.host = host
        self.lifespan = lifespan
        self.factory = factory
        self.args = list(args)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.log_level = log_level
        self._requested_port = port
        self._port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The child's process id."""
        if self.process is None:
            raise RuntimeError("LiveProcess is not started")
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        """The child's exit status, or None while it runs."""
        return None if self.process is None else self.process.poll()

    def start(self) -> None:
        """Spawn the child and wait (bounded) until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("LiveProcess is already running")
        sock = _bind(self.host, self._requested_port, listen=False)
        try:
            self._port = sock.getsockname()[1]
            # Later restarts reuse the same port.
            self._requested_port = self._port
            fd = sock.fileno()
            command = [
                sys.executable,
                "-m",
                "uvicorn",
                self.target,
                "--fd",
                str(fd),
                "--lifespan",
                self.lifespan,
                "--log-level",
                self.log_level,
                "--timeout-graceful-shutdown",
                "5",
            ]
            if self.factory:
                command.append("--factory")
            command.extend(self.args)
            env = dict(os.environ if self.env is None else self.env)
            self.process = subprocess.Popen(
                command, pass_fds=(fd,), env=env, cwd=self.cwd, stdin=subprocess.DEVNULL
            )
        finally:
            sock.close()
        self._wait_listening()

    def _wait_listening(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        delay = 0.01
        while True:
            code = self.process.poll()
            if code is not None:
                raise ServerStartupError(
                    f"uvicorn {self.target} exited with status {code} before listening"
                )
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.settimeout(1.0)
                if probe.connect_ex((self.host, self.port)) == 0:
                    return
            if time.monotonic() >= deadline:
                self.kill()
                raise ServerStartupError(
                    f"uvicorn {self.target} did not listen within {self.startup_timeout} s"
                )
            time.sleep(delay)  # a bounded readiness poll: the child gives no other signal
            delay = min(delay * 2, 0.2)

    def kill(self) -> None:
        """SIGKILL the child (no graceful shutdown) and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.wait(self.shutdown_timeout)

    def stop(self) -> None:
        """SIGTERM the child and wait for a graceful exit; SIGKILL it if that takes too long."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.shutdown_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.wait(self.shutdown_timeout)

    def wait(self, timeout: float | None = None) -> int:
        """Wait (bounded by ``timeout``) for the child to exit; return its status."""
        if self.process is None:
            raise RuntimeError("LiveProcess is not started")
        return self.process.wait(timeout)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port."""
        self.stop()
        self.start()
