"""``hydra/launcher=dhs_emr``: every job of a sweep becomes one step on one EMR cluster.

    dhs -m stage=4c source=sersic,cosmos cluster=emr cluster.emr.region=us-west-2 \\
        cluster.emr.staging_uri=s3://bucket/staging paths.data_root=s3://bucket/data \\
        hydra/launcher=dhs_emr

``mode=submit`` (default) stages the wheel once, creates one cluster with all the steps (or adds
them to ``cluster.emr.cluster_id``), waits and returns one result per job; a step that did not
complete fails its job. ``mode=local`` records each job's step request in
``<sweep dir>/emr_steps.json`` and runs the job here, in this process, as the cluster would
(``cluster=spark_local`` with ``local_master`` instead of yarn): a rehearsal without AWS.
Heavy imports (boto3, dhs) happen inside ``launch``. No ``from __future__ import annotations``:
Hydra's plugin scan executes this module outside ``sys.modules``, where dataclasses cannot
resolve string annotations.
"""

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

MODES = ("submit", "local")
STEPS_FILE = "emr_steps.json"


@dataclass
class DhsEmrLauncherConf:
    _target_: str = "hydra_plugins.dhs_launcher.emr_launcher.EmrLauncher"
    mode: str = "submit"
    local_master: str = "local[*]"


ConfigStore.instance().store(group="hydra/launcher", name="dhs_emr", node=DhsEmrLauncherConf,
                             provider="dhs_launcher")


def _job_config(sweep_config: DictConfig) -> dict:
    """The job's config without the hydra node, interpolations resolved."""
    cfg = copy.deepcopy(sweep_config)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def _emr_settings(plain: dict) -> Any:
    """The EMR settings of a job's config (defaults for a config that is not dhs's)."""
    from dhs.executors.emr.api import EmrSettings
    from dhs.stages.settings import emr_settings

    cluster = plain.get("cluster")
    if not (isinstance(cluster, dict) and isinstance(cluster.get("emr"), dict)):
        return EmrSettings()
    return emr_settings(OmegaConf.create(plain), check=False)


class EmrLauncher(Launcher):
    def __init__(self, mode: str = "submit", local_master: str = "local[*]") -> None:
        super().__init__()
        if mode not in MODES:
            from dhs.errors import ConfigError

            raise ConfigError(f"hydra.launcher.mode={mode!r}: allowed {', '.join(MODES)}")
        self.mode = mode
        self.local_master = local_master
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None
        self.requests: list[dict] = []

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def _sweep_config(self, overrides: Sequence[str], idx: int) -> DictConfig:
        assert self.hydra_context is not None and self.config is not None
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
        return sweep_config

    def _record(self, entries: list[dict]) -> Path:
        assert self.config is not None
        path = Path(str(self.config.hydra.sweep.dir)) / STEPS_FILE
        old = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps(old + entries, indent=2, default=str))
        return path

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.config is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"dhs_emr launcher ({self.mode}): {len(job_overrides)} job(s)")
        if self.mode == "local":
            return self._launch_local(job_overrides, initial_job_idx)
        return self._launch_submit(job_overrides, initial_job_idx)

    # ------------------------------------------------------------------ local rehearsal
    def _launch_local(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> List[JobReturn]:
        from dhs.executors.emr import api as rq
        from dhs.io import storage

        assert self.hydra_context is not None and self.task_function is not None
        runs: List[JobReturn] = []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self._sweep_config(overrides, idx)
            plain = _job_config(sweep_config)
            emr = _emr_settings(plain)
            staging = emr.staging_uri or "s3://STAGING"
            step_args, _ = rq.step_overrides(list(overrides))
            args = rq.spark_submit_args(emr, storage.join(staging, "dhs_driver.py"), step_args)
            entry = {"job": idx, "overrides": list(overrides),
                     "step": rq.step_request(f"dhs #{idx} {' '.join(overrides)}", args,
                                             emr.action_on_failure or "CONTINUE")}
            self.requests.append(entry)
            self._record([entry])
            if (plain.get("cluster") or {}).get("name") == "emr":  # run it as the cluster would
                local_overrides, _ = rq.step_overrides(list(overrides), master=self.local_master)
                as_submitted = sweep_config
                sweep_config = self._sweep_config(local_overrides, idx)
                with open_dict(sweep_config):  # job dir and reported overrides: the sweep's own
                    sweep_config.hydra.overrides.task = as_submitted.hydra.overrides.task
                    sweep_config.hydra.job.override_dirname = as_submitted.hydra.job.override_dirname
            ret = run_job(hydra_context=self.hydra_context, task_function=self.task_function,
                          config=sweep_config, job_dir_key="hydra.sweep.dir",
                          job_subdir_key="hydra.sweep.subdir")
            runs.append(ret)
            configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)  # type: ignore[union-attr]
        return runs

    # ------------------------------------------------------------------ EMR submission
    def _launch_submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> List[JobReturn]:
        from dhs.config import schema as dhs_config
        from dhs.executors.emr import submit as dhs_emr
        from dhs.io import storage
        from dhs.provenance import resolved_config
        from dhs.stages import settings as stage_settings
        from dhs.console import console

        configs, jobs, sweep_configs = [], [], []
        for i, overrides in enumerate(job_overrides):
            idx = initial_job_idx + i
            sweep_config = self._sweep_config(overrides, idx)
            plain = _job_config(sweep_config)
            if (plain.get("cluster") or {}).get("name") != "emr":
                raise dhs_config.ConfigError(
                    f"hydra/launcher=dhs_emr submits jobs to EMR but job #{idx} has "
                    f"cluster={(plain.get('cluster') or {}).get('name')!r}: add cluster=emr "
                    "(or use hydra.launcher.mode=local to run the jobs here).")
            dhs_config.check(sweep_config)
            if configs and plain["cluster"]["emr"] != configs[0]["cluster"]["emr"]:
                raise dhs_config.ConfigError(
                    "cluster.emr.* differs between jobs of this sweep; one sweep runs on one "
                    "cluster: sweep over job settings only.")
            configs.append(plain)
            sweep_configs.append(sweep_config)
            jobs.append(dhs_emr.Job(name=dhs_emr.job_name(plain["stage"]["name"], overrides, idx),
                                    overrides=list(overrides), config=resolved_config(plain)))
        first = OmegaConf.create(configs[0])
        emr = stage_settings.emr_settings(first)
        storage.configure_from(emr.storage)
        try:
            result = dhs_emr.submit_jobs(emr, jobs, console())
        except dhs_emr.EmrError as exc:
            if not exc.report:
                raise
            result = exc.report
        self.requests.append(result)
        self._record([{"job": initial_job_idx + i, "overrides": j.overrides,
                       "step": (result["steps"][i] if result.get("steps") else None)}
                      for i, j in enumerate(jobs)] + [{"requests": result.get("requests")}])
        return [self._job_return(sweep_configs[i], configs[i], jobs[i].overrides,
                                 result, i) for i in range(len(jobs))]

    def _job_return(self, sweep_config: DictConfig, plain: dict, overrides: list[str],
                    result: dict, i: int) -> JobReturn:
        from dhs.executors.emr.submit import EmrError

        ret = JobReturn(overrides=overrides, cfg=OmegaConf.create(plain), hydra_cfg=sweep_config,
                        working_dir=str(self.config.hydra.sweep.dir),  # type: ignore[union-attr]
                        task_name=str(sweep_config.hydra.job.name))
        step: dict[str, Any] = result["steps"][i] if result.get("steps") else {}
        ok = result.get("dry_run") or not step or step.get("ok") or not plain["cluster"]["emr"].get("wait", True)
        if ok:
            ret.status = JobStatus.COMPLETED
            ret.return_value = {"cluster_id": result.get("cluster_id"), "run_id": result.get("run_id"),
                                **step}
        else:
            ret.status = JobStatus.FAILED
            ret.return_value = EmrError(f"EMR step {step.get('step_id')} {step.get('state')}: "
                                        f"{step.get('reason')} (logs: {step.get('logs')})", step)
        return ret
