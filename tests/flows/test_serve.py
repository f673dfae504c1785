"""`cadencia serve` against a real local Prefect server: the deployments are registered, a
run triggered through the API completes and leaves its artifacts (issue 6's local loop)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tasks.privacy import EMAIL, PHONE

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.flow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(check, seconds: float, what: str):  # noqa: ANN001, ANN202 - a predicate, its value
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        _wait(lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 90, "server")
        yield api, {**env, "PREFECT_API_URL": api}
    finally:
        _stop(server)


def test_serve_registers_deployments_and_a_triggered_run_completes(
    prefect_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    api, env = prefect_server
    inputs = tmp_path / "inputs"
    shutil.copytree(REPO / "data" / "samples", inputs)
    env = {**env, "CADENCIA_STATE_DIR": str(tmp_path / "state"),
           "CADENCIA_INPUT_DIR": str(inputs)}  # fmt: skip
    serving = subprocess.Popen(
        [str(BIN / "cadencia"), "serve", "--dispatch-every", "60"], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        names = _wait(
            lambda: {
                d["name"]
                for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
            } >= {"daily", "dispatch", "events", "shard", "backfill"} and True,
            120, "deployments",
        )  # fmt: skip
        assert names
        daily = next(d for d in httpx.post(f"{api}/deployments/filter", json={}).json()
                     if d["name"] == "daily")  # fmt: skip
        assert daily["concurrency_limit"] == 1 or daily.get("global_concurrency_limit")

        def created() -> dict | None:
            # A busy SQLite server answers 503 now and then; Prefect's own client retries it.
            answer = httpx.post(
                f"{api}/deployments/{daily['id']}/create_flow_run",
                json={"parameters": {"as_of": "2026-11-20"}},
            )
            return answer.json() if answer.status_code != 503 else None

        run = _wait(created, 60, "the flow run")

        def finished() -> str | None:
            state = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=5).json()["state"]
            return state["type"] if state and state["type"] in ("COMPLETED", "FAILED",
                                                                 "CRASHED") else None  # fmt: skip

        assert _wait(finished, 240, "the daily run") == "COMPLETED"
        artifacts = httpx.post(
            f"{api}/artifacts/filter",
            json={"flow_runs": {"id": {"any_": [run["id"]]}}},
        ).json()
        keys = {a["key"] for a in artifacts if a.get("key")}
        assert {"ingestion-summary", "outreach-plan", "delivery-summary"} <= keys
        text = " ".join(str(a.get("data")) for a in artifacts)
        assert not EMAIL.search(text) and not PHONE.search(text)  # no address in the UI
    finally:
        _stop(serving)
