"""Scale-out on this machine, end to end: a Prefect server on PostgreSQL, a process work pool
with two workers, the ledger on PostgreSQL, a sharded daily run (4 shards) over generated
exports — and what the provider sandbox saw."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from sandbox.record import max_in_window
from tasks.ledger.db import dispose_engines, engine_for, migrate
from tasks.ledger.models import Touch
from tasks.sample_data.due_touches import seed_due_touches
from tasks.sample_data.generator import generate

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAY = "2026-11-19"
WHATSAPP_PER_SECOND = 80  # config/delivery.yaml
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
pytestmark = [pytest.mark.flow, pytest.mark.postgres]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str]]:
    """(Prefect server URL, ledger URL): two fresh PostgreSQL databases."""
    admin = sa.create_engine(os.environ.get("CADENCIA_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                             isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)  # fmt: skip
    names = [f"cadencia_scale_{kind}_{uuid.uuid4().hex[:6]}" for kind in ("prefect", "ledger")]
    try:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is unreachable: {exc.orig}")
        pytest.skip(f"PostgreSQL is unreachable: {exc.orig}")
    base = admin.url
    prefect_url = base.set(drivername="postgresql+asyncpg", database=names[0])
    ledger_url = base.set(database=names[1])
    try:
        yield (prefect_url.render_as_string(hide_password=False),
               ledger_url.render_as_string(hide_password=False))  # fmt: skip
    finally:
        dispose_engines()
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _wait(check, seconds: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def cluster(databases: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    prefect_db, ledger_url = databases
    root = tmp_path_factory.mktemp("scale")
    exports = root / "exports"
    generate(exports, contacts=2000, seed=5)
    api_port, sandbox_port = _free_port(), _free_port()
    api = f"http://127.0.0.1:{api_port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "CADENCIA_STATE_DIR": str(root / "state"),
        "CADENCIA_DATABASE_URL": ledger_url,
        "CADENCIA_INPUT_DIR": str(exports),
        "CADENCIA_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "CADENCIA_SENDERS": "2",
    }
    record = root / "sandbox.jsonl"
    logs = root / "logs"
    logs.mkdir()
    processes: list[subprocess.Popen] = []

    def start(name: str, *command: str) -> None:
        out = (logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        processes.append(process)

    try:
        start("server", str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
              "--port", str(api_port))  # fmt: skip
        _wait(lambda: httpx.get(f"{api}/health", timeout=2).json() is True, 90, "the server")
        start("sandbox", str(BIN / "cadencia"), "sandbox", "--port", str(sandbox_port),
              "--record", str(record))  # fmt: skip
        for command in (["cadencia", "setup"], ["prefect", "--no-prompt", "deploy", "--name",
                                                 "shard"]):  # fmt: skip
            done = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=120)  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
        for n in (1, 2):
            start(f"worker{n}", str(BIN / "prefect"), "worker", "start", "--pool", "cadencia",
                  "--limit", "1", "--name", f"worker-{n}")  # fmt: skip
        _wait(lambda: len(httpx.post(f"{api}/work_pools/cadencia/workers/filter", json={},
                                     timeout=5).json()) >= 2, 60, "two workers")  # fmt: skip
        yield {"env": env, "root": root, "record": record, "api": api, "ledger": ledger_url}
    finally:
        for p in processes:
            with_signal = subprocess.run(["kill", "--", f"-{p.pid}"], capture_output=True)
            del with_signal
        for p in processes:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                subprocess.run(["kill", "-9", "--", f"-{p.pid}"], capture_output=True)


def _plan(url: str) -> list[tuple]:
    t = Touch.__table__
    columns = ["idempotency_key", "message_ref", "channel", "golden_id", "step", "template",
               "send_at"]  # fmt: skip
    query = (
        sa.select(*[t.c[c] for c in columns])
        .where(t.c.case_key.is_not(None), t.c.as_of == dt.date.fromisoformat(DAY))
        .order_by(t.c.idempotency_key)
    )
    with engine_for(url).connect() as conn:
        return [tuple(row) for row in conn.execute(query).all()]


def test_two_workers_run_four_shards_like_one_process(cluster: dict, tmp_path: Path) -> None:
    env = cluster["env"]
    # Load for the shards' pushes: touches due now on WhatsApp (80 msg/s), outside any case.
    migrate(cluster["ledger"])
    seeded = seed_due_touches(engine_for(cluster["ledger"]), 1200, with_cases=False)

    command = [str(BIN / "cadencia"), "run", "--as-of", DAY, "--shards", "4"]
    run = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    # The same exports, one process, no server, its own SQLite ledger.
    alone = {k: v for k, v in env.items() if not k.startswith("PREFECT_")}
    alone |= {"CADENCIA_STATE_DIR": str(tmp_path / "alone"), "CADENCIA_PROVIDER_MODE": "outbox",
              "CADENCIA_SENDERS": "1"}  # fmt: skip
    alone.pop("CADENCIA_DATABASE_URL")
    single = subprocess.run([str(BIN / "cadencia"), "run", "--as-of", DAY], cwd=REPO, env=alone,
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    sharded_plan = _plan(cluster["ledger"])
    assert len(sharded_plan) > 100
    assert sharded_plan == _plan(f"sqlite:///{tmp_path / 'alone' / 'ledger.db'}")

    # Four shard runs, completed, two of them at once on the two workers.
    with engine_for(cluster["ledger"]).connect() as conn:
        shards = conn.execute(sa.text(
            "select started_at, finished_at, status from runs "
            "where flow = 'daily_outreach_shard' order by started_at"
        )).all()  # fmt: skip
    assert [s.status for s in shards] == ["completed"] * 4
    assert any(a.finished_at > b.started_at for a, b in zip(shards, shards[1:], strict=False))
    # The Prefect server kept its runs in PostgreSQL.
    runs = httpx.post(f"{cluster['api']}/flow_runs/filter", json={}, timeout=10).json()
    assert sum(r["state_type"] == "COMPLETED" for r in runs) >= 4

    # What the provider saw: every seeded touch once, never over its rate in any second.
    entries = [json.loads(line) for line in cluster["record"].read_text().splitlines()]
    refs = Counter(e["ref"] for e in entries)
    assert not [ref for ref, n in refs.items() if n > 1]
    assert set(seeded["message_ref"]) <= set(refs)
    times: defaultdict[str, list[float]] = defaultdict(list)
    for e in entries:
        times[e["provider"]].append(e["at"])
    assert max_in_window(times["whatsapp"]) <= WHATSAPP_PER_SECOND
