"""Running the sandbox: `serve` blocks (the CLI), `start_in_thread` gives a live server on a free
port to a flow or a test and stops it cleanly.

uvicorn with httptools and uvloop when they are installed: the sandbox has to outrun the
sender it measures, and the pure-Python h11 parser would be the bottleneck first.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
from typing import Any

import uvicorn

from sandbox.app import Sandbox
from tasks.deliver.serving import ThreadedServer


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


def serve(host: str = "127.0.0.1", port: int = 8787, **options: Any) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM). `options` are `Sandbox`'s: webhook_url,
    meta_app_secret, rbm_client_token, faults, record_file, templates, webhooks."""
    sandbox = Sandbox(**options)
    # The imports are done: exempt them from the cycle collector, whose full passes would
    # stall request handling and bunch the timestamps the rate limit counts.
    gc.freeze()
    uvicorn.Server(_config(sandbox.app, host, port)).run()


class RunningSandbox(ThreadedServer):
    """A sandbox serving in a background thread. `sandbox` is the live state (record,
    faults) for in-process inspection; the HTTP control API works the same."""

    def __init__(self, sandbox: Sandbox, host: str, port: int) -> None:
        super().__init__(_config(sandbox.app, host, port), host, port)
        self.sandbox = sandbox

    @property
    def sendgrid_public_key(self) -> str:
        return self.sandbox.sendgrid_public_key

    def start(self, timeout: float = 10.0) -> RunningSandbox:
        super().start(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopping = self.sandbox.loop, self.sandbox.stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stopping.set)  # release hung answers at once
        super().stop(timeout)

    def __enter__(self) -> RunningSandbox:
        return self


def start_in_thread(port: int = 0, *, host: str = "127.0.0.1", **options: Any) -> RunningSandbox:
    """Start serving in a daemon thread and return once it accepts connections (port 0: a
    free one, reported by `.url`). `options` are `Sandbox`'s, as for `serve`."""
    return RunningSandbox(Sandbox(**options), host, port).start()
