"""Submission to AWS EMR (``cluster=emr``): stage assets on S3, create or reuse a cluster, add
steps, wait with a live status table, report each step's state and where its logs are.

Staged under ``{cluster.emr.staging_uri}/{run_id}/``: the dhs wheel, ``constraints.txt`` (the
pinned versions of its runtime dependencies, from this environment), ``bootstrap.sh`` (installs
the wheel on every node with those pins), ``dhs_driver.py`` (what spark-submit runs) and each
job's resolved config (``config/<job>.json``, secrets redacted). Executor memory settings are
sized from the workload (``dhs.executors.emr.memory``) unless ``cluster.spark_conf`` sets them.
Each job's run directory is copied to ``{paths.data_root}/runs/{run_id}/<job>/`` when it ends;
the final report names it, the step logs and the YARN container logs. ``cluster.dry_run=true`` prints the exact
requests as JSON and sends nothing. Everything comes from an ``EmrSettings`` (built and checked
from the config by ``dhs.stages.settings.emr_settings``) and the jobs' plain resolved configs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from dhs.errors import DhsError
from dhs.executors.emr import api as rq
from dhs.executors.emr import memory
from dhs.executors.emr.api import EmrSettings

TERMINAL_STATES = ("COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED")
DEAD_CLUSTER_STATES = ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS")


class EmrError(DhsError):
    """A submission failed, or a submitted step did not complete (message names the logs)."""

    def __init__(self, message: str, report: Optional[dict] = None) -> None:
        super().__init__(message)
        self.report = report or {}


@dataclass
class Job:
    """One dhs run to submit as a step: its name, task overrides and resolved config."""

    name: str
    overrides: list[str]
    config: dict = field(default_factory=dict)


def project_root() -> Path:
    """The source tree dhs runs from (where pyproject.toml is), for building the wheel."""
    import dhs

    root = Path(dhs.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").exists():
        raise EmrError("dhs is not running from a source tree, so no wheel can be built: "
                       "set cluster.emr.wheel=/path/to/dhs-<version>-py3-none-any.whl.")
    return root


def wheel_name() -> str:
    import importlib.metadata

    return f"dhs-{importlib.metadata.version('dhs')}-py3-none-any.whl"


def build_wheel(out_dir: str | Path, prebuilt: Optional[str] = None) -> Path:
    """Build the dhs wheel (``pip wheel --no-deps``) into ``out_dir``, or use ``prebuilt``."""
    if prebuilt:
        path = Path(prebuilt)
        if not path.is_file() or path.suffix != ".whl":
            raise EmrError(f"cluster.emr.wheel={prebuilt!r} is not a wheel file.")
        return path
    out = Path(out_dir)
    base = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out)]
    errors = []
    with tempfile.TemporaryDirectory(prefix="dhs-build-") as scratch:
        # setuptools' build/ and egg-info go to a fresh scratch folder, not the source tree:
        # no stale files from an earlier build, no clash with a concurrent one.
        extra_cfg = Path(scratch, "build.cfg")
        extra_cfg.write_text(f"[build]\nbuild_base = {scratch}/build\n"
                             f"[egg_info]\negg_base = {scratch}\n")
        env = {**os.environ, "DIST_EXTRA_CONFIG": str(extra_cfg)}
        # The build backend of this environment first (no download), else an isolated build.
        for extra in (["--no-build-isolation"], []):
            cmd = base + extra + [str(project_root())]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wheels = sorted(out.glob("dhs-*.whl"))
            if proc.returncode == 0 and wheels:
                return wheels[-1]
            errors.append(f"$ {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    raise EmrError("building the dhs wheel failed:\n" + "\n".join(errors))


def emr_client(emr: EmrSettings) -> Any:
    import boto3

    kwargs: dict[str, Any] = {"region_name": emr.region}
    if emr.endpoint_url:
        kwargs["endpoint_url"] = emr.endpoint_url
    if emr.storage.access_key:
        kwargs["aws_access_key_id"] = emr.storage.access_key
        kwargs["aws_secret_access_key"] = emr.storage.secret_key
    return boto3.client("emr", **kwargs)


def _print_json(console: Any, title: str, data: Any) -> None:
    console.rule(title)
    console.out(json.dumps(data, indent=2, default=str), highlight=False)


def plan(emr: EmrSettings, jobs: Sequence[Job], run_id: str) -> dict:
    """Every upload and API request of a submission, as data (what dry_run prints)."""
    from dhs.io import storage

    staging = storage.join(storage.normalize(emr.staging_uri), run_id)
    log_uri = storage.normalize(emr.log_uri or storage.join(emr.staging_uri, "logs"))
    uris = {"wheel": storage.join(staging, wheel_name()),
            "constraints": storage.join(staging, "constraints.txt"),
            "bootstrap": storage.join(staging, "bootstrap.sh"),
            "driver": storage.join(staging, "dhs_driver.py")}
    bank, bank_how = memory.bank_bytes(emr.source, emr.bank_path)
    conf = memory.executor_memory_conf(bank, dict(emr.spark_conf))
    steps, dropped, configs, run_records = [], [], {}, []
    for i, job in enumerate(jobs):
        overrides, left_out = rq.step_overrides(job.overrides)
        dropped += left_out
        configs[job.name] = storage.join(staging, "config", f"{i:03d}.json")
        run_records.append(run_record_uri(emr, run_id, i))
        args = rq.spark_submit_args(emr, uris["driver"], overrides, conf=conf,
                                    driver_args=[f"dhs_run/{i:03d}", run_records[-1]])
        steps.append(rq.step_request(job.name, args, emr.action_on_failure or "CONTINUE"))
    requests: dict[str, Any] = {}
    if emr.cluster_id:
        requests["add_job_flow_steps"] = {"JobFlowId": emr.cluster_id, "Steps": steps}
    else:
        requests["run_job_flow"] = rq.job_flow_request(
            emr, name=f"dhs {emr.stage} {run_id}", log_uri=log_uri, bootstrap_uri=uris["bootstrap"],
            wheel_uri=uris["wheel"], constraints_uri=uris["constraints"], steps=steps,
            tags={"dhs-run": run_id})
    memory_plan = {"bank_bytes": bank, "bank": bank_how, "spark_conf": conf,
                   "container_mb": memory.container_mb(conf)}
    return {"run_id": run_id, "staging": staging, "log_uri": log_uri, "uris": uris,
            "configs": configs, "run_records": run_records, "memory": memory_plan,
            "requests": requests, "dropped_overrides": sorted(set(dropped))}


def run_record_uri(emr: EmrSettings, run_id: str, index: int) -> str:
    """Where job ``index``'s run directory is copied: next to the data, ``{data_root}/runs/``."""
    from dhs.io import storage

    return storage.join(storage.normalize(emr.data_root), "runs", run_id, f"{index:03d}") + "/"


def _upload(emr: EmrSettings, jobs: Sequence[Job], p: dict) -> None:
    from dhs.executors.emr.bootstrap import bootstrap_script, driver_script
    from dhs.io import storage

    from dhs.executors.emr.constraints import constraints_text

    with tempfile.TemporaryDirectory(prefix="dhs-wheel-") as tmp:
        wheel = build_wheel(tmp, emr.wheel)
        storage.write_bytes_atomic(p["uris"]["wheel"], wheel.read_bytes())
    storage.write_text_atomic(p["uris"]["constraints"], constraints_text())
    storage.write_text_atomic(p["uris"]["bootstrap"],
                              bootstrap_script(emr.python or "python3", list(emr.bootstrap_commands)))
    storage.write_text_atomic(p["uris"]["driver"], driver_script())
    for job in jobs:
        storage.write_text_atomic(p["configs"][job.name],
                                  json.dumps(job.config, indent=2, sort_keys=True, default=str))


def _step_ids(client: Any, cluster_id: str, names: Sequence[str]) -> list[str]:
    """Ids of the steps named ``names`` (in that order) on a new cluster."""
    found: list[dict] = []
    for page in client.get_paginator("list_steps").paginate(ClusterId=cluster_id):
        found += page["Steps"]
    found.reverse()  # list_steps returns the newest first
    ids, used = [], set()
    for name in names:
        match = next(s["Id"] for s in found if s["Name"] == name[:256] and s["Id"] not in used)
        used.add(match)
        ids.append(match)
    return ids


def _status_table(cluster_id: str, rows: list[dict]) -> Any:
    from rich.table import Table

    table = Table(title=f"EMR cluster {cluster_id}", title_justify="left")
    for col in ("step", "name", "state", "elapsed"):
        table.add_column(col)
    colors = {"COMPLETED": "green", "FAILED": "red", "CANCELLED": "red", "INTERRUPTED": "red",
              "RUNNING": "cyan", "PENDING": "yellow"}
    for r in rows:
        state = r["state"]
        table.add_row(r["step_id"], r["name"][:60], f"[{colors.get(state, 'white')}]{state}[/]",
                      f"{r.get('elapsed_s', 0):.0f} s")
    return table


def wait_for_steps(client: Any, cluster_id: str, step_ids: Sequence[str], *, log_uri: str,
                   poll_seconds: float, console: Any, timeout_s: Optional[float] = None,
                   sleep: Callable[[float], None] = time.sleep) -> list[dict]:
    """Poll describe_step until every step is terminal (or the cluster died); one report each."""
    from rich.live import Live

    started = time.time()
    rows = {sid: {"step_id": sid, "name": "", "state": "PENDING"} for sid in step_ids}
    with Live(_status_table(cluster_id, list(rows.values())), console=console,
              refresh_per_second=4, transient=False) as live:
        while True:
            for sid, row in rows.items():
                if row["state"] in TERMINAL_STATES:
                    continue
                step = client.describe_step(ClusterId=cluster_id, StepId=sid)["Step"]
                status = step["Status"]
                row.update(name=step.get("Name", ""), state=status["State"],
                           elapsed_s=time.time() - started,
                           reason=(status.get("StateChangeReason") or {}).get("Message"),
                           failure=status.get("FailureDetails") or {})
            live.update(_status_table(cluster_id, list(rows.values())))
            if all(r["state"] in TERMINAL_STATES for r in rows.values()):
                break
            cluster = client.describe_cluster(ClusterId=cluster_id)["Cluster"]["Status"]
            if cluster["State"] in DEAD_CLUSTER_STATES:
                why = (cluster.get("StateChangeReason") or {}).get("Message") or cluster["State"]
                for r in rows.values():
                    if r["state"] not in TERMINAL_STATES:
                        r.update(state="INTERRUPTED", reason=f"cluster {cluster['State']}: {why}")
                break
            if timeout_s is not None and time.time() - started > timeout_s:
                raise EmrError(f"steps still running after {timeout_s:.0f} s on {cluster_id}; "
                               f"they go on: follow them in the EMR console or with "
                               f"`aws emr describe-step --cluster-id {cluster_id}`.")
            sleep(poll_seconds)
    reports = []
    for r in rows.values():
        failure = r.get("failure") or {}
        reports.append({"step_id": r["step_id"], "name": r["name"], "state": r["state"],
                        "ok": r["state"] == "COMPLETED",
                        "reason": failure.get("Reason") or failure.get("Message") or r.get("reason"),
                        "log_file": failure.get("LogFile"),
                        "logs": rq.step_log_uri(log_uri, cluster_id, r["step_id"])})
    return reports


def submit_jobs(emr: EmrSettings, jobs: Sequence[Job], console: Any, *,
                sleep: Callable[[float], None] = time.sleep) -> dict:
    """Submit ``jobs`` as steps on one cluster (created once, or ``emr.cluster_id``).

    Returns {run_id, cluster_id, created, steps: [report per job, in job order], ok, staging,
    dry_run}; raises EmrError when a step did not complete (after reporting every step).
    """
    run_id = f"dhs-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
    p = plan(emr, jobs, run_id)
    if p["dropped_overrides"]:
        console.print("[yellow]left out of the step arguments (submission-only or secret):[/] "
                      + ", ".join(p["dropped_overrides"]))
    base = {"run_id": run_id, "staging": p["staging"], "log_uri": p["log_uri"],
            "memory": p["memory"], "requests": p["requests"]}
    if emr.dry_run:
        _print_json(console, "uploads (not sent)", {**p["uris"], "configs": p["configs"]})
        _print_json(console, "executor memory (sized from the workload)", p["memory"])
        for name, request in p["requests"].items():
            _print_json(console, f"EMR {name} request (not sent)", request)
        return {**base, "dry_run": True, "ok": True, "cluster_id": emr.cluster_id,
                "created": False, "steps": []}
    _upload(emr, jobs, p)
    client = emr_client(emr)
    if "run_job_flow" in p["requests"]:
        cluster_id = client.run_job_flow(**p["requests"]["run_job_flow"])["JobFlowId"]
        step_ids = _step_ids(client, cluster_id, [j.name for j in jobs])
        created = True
    else:
        cluster_id = str(emr.cluster_id)
        step_ids = client.add_job_flow_steps(**p["requests"]["add_job_flow_steps"])["StepIds"]
        created = False
    console.print(f"submitted {len(step_ids)} step(s) to EMR cluster [bold]{cluster_id}[/] "
                  f"({'new' if created else 'reused'}); staging {p['staging']}; logs "
                  f"{p['log_uri']}/{cluster_id}/")
    where = {"container_logs": rq.container_log_uri(p["log_uri"], cluster_id)}
    result = {**base, **where, "dry_run": False, "cluster_id": cluster_id, "created": created,
              "steps": [{"step_id": s, "name": j.name, "state": "PENDING", "ok": False,
                         "logs": rq.step_log_uri(p["log_uri"], cluster_id, s),
                         "run_record": p["run_records"][i], **where}
                        for i, (s, j) in enumerate(zip(step_ids, jobs))], "ok": True}
    if not emr.wait:
        return result
    timeout = emr.timeout_minutes
    reports = wait_for_steps(client, cluster_id, step_ids, log_uri=p["log_uri"],
                             poll_seconds=float(emr.poll_seconds or 30.0), console=console,
                             timeout_s=float(timeout) * 60 if timeout else None, sleep=sleep)
    reports = [{**r, "run_record": p["run_records"][i], **where} for i, r in enumerate(reports)]
    result.update(steps=reports, ok=all(r["ok"] for r in reports))
    for r in reports:
        style = "green" if r["ok"] else "bold red"
        console.print(f"[{style}]step {r['step_id']} {r['state']}[/] {r['name']}"
                      + (f": {r['reason']}" if r.get("reason") and not r["ok"] else "")
                      + f"\n  logs: {r['logs']}" + (f" (failure log {r['log_file']})" if r.get("log_file") else "")
                      + f"\n  YARN container logs (driver and executors): {r['container_logs']}"
                      + f"\n  run record: {r['run_record']}")
    if not result["ok"]:
        bad = [r for r in reports if not r["ok"]]
        raise EmrError(f"{len(bad)} of {len(reports)} EMR step(s) did not complete on {cluster_id}: "
                       + "; ".join(f"{r['step_id']} {r['state']} (logs: {r['logs']})" for r in bad),
                       report=result)
    return result


def job_name(stage: str, overrides: Sequence[str], index: int = 0) -> str:
    """A readable step name: ``dhs #0 stage=4c source=cosmos``."""
    shown = [o for o in rq.step_overrides(overrides)[0] if not o.startswith("cluster")]
    return f"dhs #{index} " + (" ".join(shown) or f"stage={stage}")


def submit(emr: EmrSettings, config: dict, overrides: Sequence[str], console: Any) -> dict:
    """``dhs ... cluster=emr``: submit this run (its resolved, redacted ``config`` as plain
    data) as one EMR step (see the module docstring)."""
    job = Job(name=job_name(emr.stage, overrides), overrides=list(overrides), config=config)
    return submit_jobs(emr, [job], console)
