"""Running the sandbox: `serve` blocks (the CLI), `start_in_thread` gives a live server on a free
port to a flow or a test and stops it cleanly.

uvicorn with httptools and uvloop when they are installed: the sandbox has to outrun the
sender it measures, and the pure-Python h11 parser would be the bottleneck first.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from sandbox.app import Sandbox
from sandbox.faults import Faults
from sandbox.providers.base import Templates


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    have = importlib.util.find_spec
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http="httptools" if have("httptools") else "h11",
        loop="uvloop" if have("uvloop") else "asyncio",
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        backlog=4096,
        # Hung answers are released at stop; this only bounds a stuck webhook or client.
        timeout_graceful_shutdown=3,
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    webhook_url: str | None = None,
    meta_app_secret: str = "sandbox-meta-secret",
    rbm_client_token: str = "sandbox-rbm-token",
    faults: Faults | dict[str, Any] | None = None,
    record_file: str | Path | None = None,
    templates: Templates | None = None,
    webhooks: bool = True,
) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM)."""
    sandbox = Sandbox(
        webhook_url=webhook_url,
        meta_app_secret=meta_app_secret,
        rbm_client_token=rbm_client_token,
        faults=faults,
        record_file=record_file,
        templates=templates,
        webhooks=webhooks,
    )
    # The imports are done: exempt them from the cycle collector, whose full passes would
    # stall request handling and bunch the timestamps the rate limit counts.
    gc.freeze()
    uvicorn.Server(_config(sandbox.app, host, port)).run()


class RunningSandbox:
    """A sandbox serving in a background thread. `sandbox` is the live state (record,
    faults) for in-process inspection; the HTTP control API works the same."""

    def __init__(self, sandbox: Sandbox, server: uvicorn.Server, sock: socket.socket) -> None:
        self.sandbox = sandbox
        self._server = server
        self._socket = sock
        self.host, self.port = sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self._run, name=f"sandbox-{self.port}", daemon=True)
        self._error: BaseException | None = None

    @property
    def sendgrid_public_key(self) -> str:
        return self.sandbox.sendgrid_public_key

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start(), not lost in the thread
            self._error = exc

    def start(self, timeout: float = 10.0) -> RunningSandbox:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sandbox did not start on {self.url}") from self._error
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopping = self.sandbox.loop, self.sandbox.stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stopping.set)  # release hung answers at once
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._socket.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    webhook_url: str | None = None,
    meta_app_secret: str = "sandbox-meta-secret",
    rbm_client_token: str = "sandbox-rbm-token",
    faults: Faults | dict[str, Any] | None = None,
    record_file: str | Path | None = None,
    templates: Templates | None = None,
    webhooks: bool = True,
) -> RunningSandbox:
    """Start serving in a daemon thread and return once it accepts connections. Port 0 binds
    a free port first, so `.url` is the real address before anything connects."""
    sandbox = Sandbox(
        webhook_url=webhook_url,
        meta_app_secret=meta_app_secret,
        rbm_client_token=rbm_client_token,
        faults=faults,
        record_file=record_file,
        templates=templates,
        webhooks=webhooks,
    )
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    server = uvicorn.Server(_config(sandbox.app, host, port))
    return RunningSandbox(sandbox, server, sock).start()
