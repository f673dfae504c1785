"""Scale-out: the daily flow's decide-and-send, one flow run per shard of the book.

The parent (the daily flow with `shards` above 1) ingests and unifies the whole book — identity
resolution needs it whole — then splits it by account and starts one `decide-shard` run per
part: through the `decide-shard/shard` deployment on a work pool when one is registered (each
worker takes runs), else in this process, one after the other. Caps, gaps and exactly-once
all live in the shared ledger, so the shards need nothing from each other.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner

from config.settings import Settings, get_settings
from flows.dispatch import push
from flows.runtime import current_flow_run_id
from tasks.decide.plan import PlanInputs
from tasks.decide.shards import read_shard, split_inputs, write_shard
from tasks.decide.task import decide_outreach
from tasks.deliver.connect import DeliveryConfigError
from tasks.ledger.db import engine_for, migrate
from tasks.ledger.runs import finish_run, runs_of, start_run

SHARD_FLOW = "daily_outreach_shard"
SHARD_DEPLOYMENT = "decide-shard/shard"


@flow(name="decide-shard", task_runner=ThreadPoolTaskRunner(max_workers=1), retries=0)
def decide_shard(
    parent_run_id: int, shard: int, shards: int, as_of: date, inputs_dir: str
) -> State:
    """Decide and send one shard of the book (its accounts, their contacts)."""
    settings = get_settings()
    get_run_logger().info("Shard %s of %s for %s (run %s)", shard + 1, shards, as_of,
                          parent_run_id)  # fmt: skip
    migrate(settings.ledger_url)
    engine = engine_for(settings.ledger_url)
    run_id = start_run(engine, flow=SHARD_FLOW, as_of=as_of, flow_run_id=current_flow_run_id())
    summary: dict[str, Any] = {"parent_run_id": parent_run_id, "shard": shard, "shards": shards}
    summary["plan"] = decide_part(decide_outreach, settings, run_id, shard, shards, as_of,
                                  inputs_dir)  # fmt: skip
    try:
        summary["delivery"] = push(settings, f"{as_of} shard {shard + 1}/{shards}")
    except DeliveryConfigError as problem:
        finish_run(engine, run_id, status="failed", summary=summary)
        return Failed(message=str(problem), data=summary)
    finish_run(engine, run_id, status="completed", summary=summary)
    return Completed(message=f"shard {shard + 1}/{shards} done", data=summary)


def decide_part(
    decide: Callable[..., tuple[Any, dict[str, Any]]],
    settings: Settings,
    run_id: int,
    shard: int,
    shards: int,
    day: date,
    inputs_dir: str,
) -> dict[str, Any]:
    """Decide one shard from its Parquet inputs (`decide`: the Prefect task, or its function
    inside a Dask task); returns its plan summary."""
    _plan, summary = decide(
        settings.ledger_url, run_id, read_shard(Path(inputs_dir)), day, settings.timezone,
        settings.decisions_dir, shard=(shard, shards),
    )  # fmt: skip
    return summary


def decide_in_shards(
    settings: Settings, run_id: int, inputs: PlanInputs, day: date, shards: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(combined plan summary, combined delivery summary) of all shards; raises when a
    shard failed (its message names which)."""
    folder = settings.state_dir / "shards" / f"run-{run_id}"
    paths = split_book(inputs, day, shards, folder)
    parameters = [
        {"parent_run_id": run_id, "shard": k, "shards": shards, "as_of": day.isoformat(),
         "inputs_dir": path}
        for k, path in enumerate(paths)
    ]  # fmt: skip
    local = not shard_deployment_exists()
    if local:
        get_run_logger().info("No %s deployment registered: shards are decided on Dask here",
                              SHARD_DEPLOYMENT)  # fmt: skip
        on_dask(settings)(parameters)
    else:
        run_shard_deployments(parameters)
    done = [r for r in runs_of(engine_for(settings.ledger_url), SHARD_FLOW, day)
            if (r.summary or {}).get("parent_run_id") == run_id]  # fmt: skip
    latest = {r.summary["shard"]: r for r in sorted(done, key=lambda r: r.id)}
    failed = [k + 1 for k in range(shards) if k not in latest or latest[k].status != "completed"]
    if failed:
        raise ShardError(f"shard(s) {failed} of {shards} did not complete; see their flow runs")
    # The shards' inputs hold personal data: gone once every shard has recorded its plan (a
    # failed run keeps them for inspection; rerunning the day is safe, the ledger's keys decide).
    shutil.rmtree(folder, ignore_errors=True)
    plans = [latest[k].summary["plan"] for k in range(shards)]
    if local:  # decided apart, sent together
        return combine_plans(plans), push(settings, f"{day} {shards} shards")
    deliveries = [latest[k].summary["delivery"] for k in range(shards)]
    return combine_plans(plans), combine_deliveries(deliveries)


class ShardError(RuntimeError):
    pass


@task(name="decide-partition", cache_policy=NO_CACHE)
def decide_partition(
    parent_run_id: int, shard: int, shards: int, as_of: str, inputs_dir: str
) -> dict[str, Any]:
    """One shard decided in a Dask worker: only its part of the book is in memory there."""
    settings = get_settings()
    engine = engine_for(settings.ledger_url)
    day = date.fromisoformat(as_of)
    run_id = start_run(engine, flow=SHARD_FLOW, as_of=day, flow_run_id=None)
    summary: dict[str, Any] = {"parent_run_id": parent_run_id, "shard": shard, "shards": shards}
    summary["plan"] = decide_part(decide_outreach.fn, settings, run_id, shard, shards, day,
                                  inputs_dir)  # fmt: skip
    finish_run(engine, run_id, status="completed", summary=summary)
    return {"shard": shard, "touches": summary["plan"]["touches_planned"]}


@flow(name="decide-partitions", retries=0)
def decide_partitions(parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every shard as one task on the Dask cluster, at once."""
    futures = [decide_partition.submit(**p) for p in parameters]
    return [f.result() for f in futures]


def on_dask(settings: Settings):  # noqa: ANN201 - a Flow configured with its task runner
    """`decide_partitions` on a local Dask cluster of worker processes (memory apart), or on
    the scheduler at CADENCIA_DASK_ADDRESS."""
    from prefect_dask import DaskTaskRunner

    if settings.dask_address:
        runner = DaskTaskRunner(address=settings.dask_address)
    else:
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": settings.dask_workers,
                                                "threads_per_worker": 1, "processes": True,
                                                "dashboard_address": ":0"})  # fmt: skip
    return decide_partitions.with_options(task_runner=runner)


@task(name="split-book", cache_policy=NO_CACHE)
def split_book(inputs: PlanInputs, day: date, shards: int, folder: Path) -> list[str]:
    """Each shard's inputs as Parquet under the state dir; flow parameters carry only paths."""
    parts = split_inputs(inputs, shards, pd.Timestamp(day))
    return [str(write_shard(part, folder / f"shard-{k}")) for k, part in enumerate(parts)]


def shard_deployment_exists() -> bool:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(SHARD_DEPLOYMENT)
        except ObjectNotFound:
            return False
    return True


@task(name="run-shards", cache_policy=NO_CACHE)
def run_shard_deployments(parameters: list[dict[str, Any]], poll_seconds: float = 2.0) -> None:
    """Start every shard's run at once (workers pick them up), then wait for all of them."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    started = [run_deployment(SHARD_DEPLOYMENT, parameters=p, timeout=0, as_subflow=True)
               for p in parameters]  # fmt: skip
    waiting = {run.id for run in started}
    with get_client(sync_client=True) as client:
        while waiting:
            time.sleep(poll_seconds)
            for run_id in list(waiting):
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    waiting.discard(run_id)


def combine_plans(plans: list[dict[str, Any]]) -> dict[str, Any]:
    """The shards' plan summaries added up into the whole book's."""
    cases = {k: sum(p["cases"][k] for p in plans) for k in ("open", "paused", "closed")}
    cases["by_stage"] = _add([p["cases"]["by_stage"] for p in plans])
    amounts: dict[tuple[str, str], list[float]] = {}
    for p in plans:
        for row in p["amount_by_stage"]:
            got = amounts.setdefault((row["stage"], row["currency"]), [0, 0.0])
            got[0] += row["cases"]
            got[1] += row["amount"]
    rules: Counter[tuple[str, str]] = Counter()
    for p in plans:
        for row in p["decisions_by_rule"]:
            rules[(row["outcome"], row["rule"])] += row["count"]
    return {
        "cases": cases,
        "touches_planned": sum(p["touches_planned"] for p in plans),
        "touches_new": sum(p["touches_new"] for p in plans),
        "touches_by_channel": _add([p["touches_by_channel"] for p in plans]),
        "decisions": _add([p["decisions"] for p in plans]),
        "amount_by_stage": [
            {"stage": s, "currency": c, "cases": n, "amount": round(a, 2)}
            for (s, c), (n, a) in sorted(amounts.items())
        ],
        "touches_by_step": _add([p["touches_by_step"] for p in plans]),
        "decisions_by_rule": [
            {"outcome": o, "rule": r, "count": n} for (o, r), n in rules.most_common()
        ],
        # One decisions file per shard, side by side in the day's folder (`explain` reads all).
        "decisions_file": str(Path(plans[0]["decisions_file"]).parent) if plans else None,
        "shards": len(plans),
    }


def combine_deliveries(deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    rows: dict[str, Counter[str]] = {}
    for d in deliveries:
        for row in d["channels"]:
            counts = rows.setdefault(row["channel"], Counter())
            counts.update({k: v for k, v in row.items() if k not in ("channel", "deferred")})
            # Every shard sees all touches due later (the ledger is shared): not a sum.
            counts["deferred"] = max(counts["deferred"], row.get("deferred", 0))
    return {
        "channels": [{"channel": ch, **dict(c)} for ch, c in sorted(rows.items())],
        "housekeeping": _add([d.get("housekeeping", {}) for d in deliveries]),
        "messages": sum(d["messages"] for d in deliveries),
        "seconds": max((d["seconds"] for d in deliveries), default=0.0),
    }


def _add(dicts: list[dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for d in dicts:
        total.update(d)
    return dict(total.most_common())
