"""Benchmark: a sharded daily run on 1 vs 2 Prefect workers, same data, same machine.

    .venv/bin/python bench/shards.py --contacts 1000000 --seed 7 --shards 4 --workers 1 2

For each worker count: fresh PostgreSQL databases for the Prefect server and the ledger, a
Prefect server on PostgreSQL, `cadencia setup`, the shard deployment, N process workers
(`--limit 1`), then `cadencia run --as-of DAY --shards S` from this machine. Prints the wall
time and its parts, read from the ledger's runs: the parent's whole-book part (ingest, unify,
split) and the shards' span (first shard start to last shard end). The exports are generated
once (cached under bench/out/). The day is in the past, so the plan's touches expire at the
push instead of being sent: sending is paced by the providers' rate limits, not by workers
(docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa
from common import OUT, ROOT, dataset  # noqa: E402

BIN = ROOT / ".venv" / "bin"
ADMIN = os.environ.get("CADENCIA_TEST_POSTGRES_URL",
                       "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")  # fmt: skip
DAY = "2026-11-20"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).json() is True:
                return
        except (httpx.HTTPError, OSError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer")


def one(workers: int, shards: int, exports: Path) -> dict:
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    tag = uuid.uuid4().hex[:6]
    names = {"prefect": f"bench_prefect_{tag}", "ledger": f"bench_ledger_{tag}"}
    with admin.connect() as conn:
        for name in names.values():
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    root = OUT / f"shards-{tag}"
    port = _port()
    api = f"http://127.0.0.1:{port}/api"
    ledger_url = admin.url.set(database=names["ledger"]).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": admin.url.set(
            drivername="postgresql+asyncpg", database=names["prefect"]
        ).render_as_string(hide_password=False),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "CADENCIA_STATE_DIR": str(root / "state"),
        "CADENCIA_DATABASE_URL": ledger_url,
        "CADENCIA_INPUT_DIR": str(exports),
        "CADENCIA_PROVIDER_MODE": "outbox",
        "CADENCIA_SENDERS": str(workers),
        # Workers ask for new runs every 2 s instead of 10 (docs/scaling.md).
        "PREFECT_WORKER_QUERY_SECONDS": "2",
    }
    root.mkdir(parents=True, exist_ok=True)
    processes = []

    def start(name: str, *command: str) -> None:
        log = (root / f"{name}.log").open("wb")
        processes.append(
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        )

    try:
        start("server", str(BIN / "prefect"), "server", "start", "--port", str(port))
        _wait(f"{api}/health")
        setup = [str(BIN / "cadencia"), "setup"]
        deploy = [str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "shard"]
        for command in (setup, deploy):
            subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        for n in range(workers):
            start(f"worker{n}", str(BIN / "prefect"), "worker", "start", "--pool", "cadencia",
                  "--limit", "1")  # fmt: skip
        time.sleep(5)
        t0 = time.perf_counter()
        command = [str(BIN / "cadencia"), "run", "--as-of", DAY, "--shards", str(shards)]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
        engine = sa.create_engine(ledger_url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            runs = conn.execute(sa.text(
                "select flow, started_at, finished_at from runs order by id")).all()  # fmt: skip
            touches = conn.execute(sa.text("select count(*) from touches")).scalar_one()
            contacts = conn.execute(sa.text("select count(*) from contacts")).scalar_one()
            touch_bytes = conn.execute(
                sa.text("select pg_total_relation_size('touches')")
            ).scalar_one()
        engine.dispose()
        parent = next(r for r in runs if r.flow == "daily_outreach")
        parts = [r for r in runs if r.flow == "daily_outreach_shard"]
        first = min(r.started_at for r in parts)
        last = max(r.finished_at for r in parts)
        return {
            "workers": workers, "shards": shards, "wall_s": round(wall, 1),
            "whole_book_s": round((first - parent.started_at).total_seconds(), 1),
            "shards_s": round((last - first).total_seconds(), 1),
            "shard_mean_s": round(sum((r.finished_at - r.started_at).total_seconds()
                                      for r in parts) / len(parts), 1),
            "contacts": contacts, "touches": touches,
            "bytes_per_touch": round(touch_bytes / max(touches, 1)),
        }  # fmt: skip
    finally:
        for p in processes:
            subprocess.run(["kill", "--", f"-{p.pid}"], capture_output=True)
        for p in processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                subprocess.run(["kill", "-9", "--", f"-{p.pid}"], capture_output=True)
        with admin.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        shutil.rmtree(root / "state", ignore_errors=True)  # ledger files, shards, decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    exports = dataset(args.contacts, args.seed)
    results = []
    for workers in args.workers:
        result = one(workers, args.shards, exports)
        print(json.dumps(result), flush=True)
        results.append(result)
    header = ["workers", "shards", "wall s", "whole book s", "shards s", "mean shard s",
              "contacts", "touches"]  # fmt: skip
    print("\n| " + " | ".join(header) + " |\n" + "|---:" * len(header) + "|")
    keys = ["workers", "shards", "wall_s", "whole_book_s", "shards_s", "shard_mean_s",
            "contacts", "touches"]  # fmt: skip
    for r in results:
        print("| " + " | ".join(f"{r[k]:,}" for k in keys) + " |")


if __name__ == "__main__":
    main()
