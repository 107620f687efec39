"""The EMR API requests of a submission, built as plain data (no AWS calls here).

A step runs ``spark-submit`` through ``command-runner.jar``; its ``Args`` are a list with one
element per argument, so a Hydra override with commas (``bands=[g,r,z]``) stays one argument.
On the cluster the job runs as ``cluster=spark_local cluster.spark_master=yarn``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from dhs.executors.emr.bootstrap import NODE_ENV
from dhs.io.storage import StorageSettings


@dataclass(frozen=True)
class EmrSettings:
    """One EMR submission (``cluster=emr``): the cluster to create (or ``cluster_id`` to reuse),
    where assets and logs go (``staging_uri``, ``log_uri``), how steps run and are waited for
    (``poll_seconds``, ``timeout_minutes``), plus the run's ``stage``, ``data_root``, ``dry_run``
    and the ``storage`` credentials used for the EMR API too; ``spark_conf`` (``cluster.spark_conf``)
    overrides the memory settings sized from ``source`` and the COSMOS ``bank_path``. Checked by the builder
    (``dhs.stages.settings.emr_settings``) before any work."""

    region: Optional[str] = None
    release_label: str = "emr-7.6.0"
    master_instance_type: str = "m5.xlarge"
    core_instance_type: str = "m5.2xlarge"
    core_instance_count: int = 2
    subnet_id: Optional[str] = None
    service_role: str = "EMR_DefaultRole"
    job_flow_role: str = "EMR_EC2_DefaultRole"
    log_uri: Optional[str] = None
    staging_uri: Optional[str] = None
    auto_terminate: bool = True
    cluster_id: Optional[str] = None
    endpoint_url: Optional[str] = None
    poll_seconds: float = 30.0
    spark_submit_args: tuple[str, ...] = ()
    deploy_mode: str = "cluster"
    python: str = "python3.11"
    wheel: Optional[str] = None
    bootstrap_commands: tuple[str, ...] = ()
    action_on_failure: str = "CONTINUE"
    wait: bool = True
    timeout_minutes: Optional[float] = None
    dry_run: bool = False
    stage: str = "run"
    data_root: str = ""
    storage: StorageSettings = field(default_factory=StorageSettings)
    spark_conf: tuple[tuple[str, str], ...] = ()
    source: str = "sersic"
    bank_path: Optional[str] = None

#: Override keys that only matter to the submitting side (dropped from step arguments).
_SUBMIT_ONLY = re.compile(r"^(cluster|cluster\.emr(\..*)?|cluster\.dry_run|cluster\.name|"
                          r"cluster\.spark_conf(\..*)?|hydra\.run\.dir|hydra\.sweep\.(dir|subdir)|"
                          r"cluster\.spark_master|hydra/launcher|hydra\.launcher(\..*)?)$")
_SECRET = re.compile(r"(secret|token|password|passwd|credential|aws_access_key_id|private_key)",
                     re.I)


def override_key(override: str) -> str:
    """``+a.b=1`` -> ``a.b``; ``~x`` -> ``x``; ``hydra/launcher=dhs_emr`` -> ``hydra/launcher``."""
    return override.lstrip("+~").split("=", 1)[0]


def step_overrides(overrides: Sequence[str], master: str = "yarn") -> tuple[list[str], list[str]]:
    """(the job's overrides as the cluster runs them, the overrides left out).

    Submission-only keys (cluster choice, cluster.emr.*) are replaced by a Spark master;
    secret-looking keys are left out (step arguments are visible in the EMR console; nodes use
    their instance role).
    """
    kept, dropped = [], []
    for ov in overrides:
        key = override_key(str(ov))
        if _SUBMIT_ONLY.match(key) or _SECRET.search(key):
            dropped.append(str(ov))
        else:
            kept.append(str(ov))
    return kept + ["cluster=spark_local", f"cluster.spark_master={quote_value(master)}"], dropped


def quote_value(value: str) -> str:
    """Quote an override value for Hydra's grammar when needed (``local[*]`` -> ``'local[*]'``)."""
    return value if re.fullmatch(r"[\w.:/-]+", value) else "'" + value.replace("'", "\\'") + "'"


def spark_submit_args(emr: EmrSettings, driver_uri: str, overrides: Sequence[str], *,
                      conf: Optional[dict[str, str]] = None,
                      driver_args: Sequence[str] = ()) -> list[str]:
    """The full command of a step, one list element per argument: ``conf`` (the memory
    settings and ``cluster.spark_conf``) as ``--conf`` pairs, then the driver file, its own
    ``driver_args`` and the job's overrides."""
    python = str(emr.python or "python3")
    args = ["spark-submit", "--master", "yarn", "--deploy-mode", str(emr.deploy_mode or "cluster"),
            "--conf", f"spark.pyspark.python={python}",
            "--conf", f"spark.pyspark.driver.python={python}",
            "--conf", f"spark.yarn.appMasterEnv.PYSPARK_PYTHON={python}",
            "--conf", f"spark.executorEnv.PYSPARK_PYTHON={python}"]
    for key, value in NODE_ENV.items():
        args += ["--conf", f"spark.yarn.appMasterEnv.{key}={value}",
                 "--conf", f"spark.executorEnv.{key}={value}"]
    for key, value in (conf if conf is not None else dict(emr.spark_conf)).items():
        args += ["--conf", f"{key}={value}"]
    args += [str(a) for a in emr.spark_submit_args]
    return args + [driver_uri] + [str(a) for a in driver_args] + list(overrides)


def step_request(name: str, args: Sequence[str], action_on_failure: str = "CONTINUE") -> dict:
    """One entry of ``Steps`` (run_job_flow / add_job_flow_steps)."""
    return {"Name": name[:256], "ActionOnFailure": action_on_failure,
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": list(args)}}


def job_flow_request(emr: EmrSettings, *, name: str, log_uri: str, bootstrap_uri: str, wheel_uri: str,
                     constraints_uri: str, steps: Sequence[dict], tags: dict[str, str]) -> dict:
    """The run_job_flow request: one cluster with Spark, the bootstrap action and the steps.

    The steps go in the same request, so an auto-terminating cluster never starts without them.
    """
    instances: dict[str, Any] = {
        "InstanceGroups": [
            {"Name": "master", "InstanceRole": "MASTER", "Market": "ON_DEMAND",
             "InstanceType": emr.master_instance_type, "InstanceCount": 1},
            {"Name": "core", "InstanceRole": "CORE", "Market": "ON_DEMAND",
             "InstanceType": emr.core_instance_type,
             "InstanceCount": int(emr.core_instance_count)},
        ],
        "KeepJobFlowAliveWhenNoSteps": not bool(emr.auto_terminate),
        "TerminationProtected": False,
    }
    if emr.subnet_id:
        instances["Ec2SubnetId"] = emr.subnet_id
    python = str(emr.python or "python3")
    return {
        "Name": name[:256],
        "LogUri": log_uri,
        "ReleaseLabel": emr.release_label,
        "Applications": [{"Name": "Spark"}],
        "Instances": instances,
        "BootstrapActions": [{"Name": "dhs-install",
                              "ScriptBootstrapAction": {"Path": bootstrap_uri, "Args": [wheel_uri, constraints_uri]}}],
        "Configurations": [{
            "Classification": "spark-env",
            "Configurations": [{"Classification": "export",
                                "Properties": {"PYSPARK_PYTHON": python, **NODE_ENV}}],
        }],
        "Steps": list(steps),
        "JobFlowRole": emr.job_flow_role,
        "ServiceRole": emr.service_role,
        "VisibleToAllUsers": True,
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }


def step_log_uri(log_uri: str, cluster_id: str, step_id: str) -> str:
    """Where EMR writes a step's stdout/stderr/controller logs."""
    from dhs.io import storage

    return storage.join(storage.normalize(log_uri), cluster_id, "steps", step_id) + "/"


def container_log_uri(log_uri: str, cluster_id: str) -> str:
    """Where EMR copies the YARN container logs (the driver's too, in cluster deploy mode):
    ``<log_uri>/<cluster>/containers/application_<id>/container_<id>/{stdout,stderr}.gz``."""
    from dhs.io import storage

    return storage.join(storage.normalize(log_uri), cluster_id, "containers") + "/"
