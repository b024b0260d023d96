"""``winslow deploy``'s talking to Nomad: register in order, wait for health, plan, remove.

Each job is registered only once the jobs it needs are healthy, and the deploy stops at
the first job that fails or does not become healthy in time, naming the job, the
allocation and Nomad's reason, so an operator never has to guess which of five jobs is
stuck. Waiting rides on blocking queries of the job's allocations (``wait`` seconds at a
time), so a change shows at once and a quiet cluster costs one request per ``wait``.
Before registering, the Nomad Variables the job's templates read are checked to hold the
items they name: a missing one would leave the task waiting without a word.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from winslow.backends.nomad.jobsapi import ServiceJobs
from winslow.backends.nomad.jobschema import validate_jobspec
from winslow.deploy.health import HealthState, JobHealth, job_health
from winslow.deploy.jobs import DeployJob, DeployVars, fill_job, needed_variables
from winslow.errors import BackendError, DeployError

if TYPE_CHECKING:
    from winslow.backends.nomad.client import NomadClient
    from winslow.backends.nomad.jobsapi import NomadJobPlanResponse

__all__ = ["Deployer", "JobStatus"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 600.0
"""How long ``deploy up`` waits for one job to become healthy, seconds."""
WAIT_SECONDS = 2.0
"""Longest blocking query while waiting, seconds: the most a progress line can lag."""


@dataclass(frozen=True)
class JobStatus:
    """What ``deploy status`` shows of one job: its verdict and where it answers."""

    health: JobHealth
    addresses: dict[str, list[str]] = field(default_factory=dict)
    """Service name → ``host:port`` of each registered instance."""
    note: str = ""
    """For a job Nomad does not have: the variant of its role that Nomad does run."""


class Deployer:
    """Deploys ``jobs`` (already chosen and ordered) through ``client``.

    ``say`` receives each progress line; ``wait`` bounds one blocking query.
    """

    def __init__(
        self,
        client: NomadClient,
        values: DeployVars,
        *,
        say: Callable[[str], None] = print,
        wait: float = WAIT_SECONDS,
        variants: Sequence[DeployJob] = (),
    ) -> None:
        """``variants``: every job file, so that a job of one storage variant found
        missing can name the variant Nomad does run (``registered_instead``)."""
        self.client = client
        self.api = ServiceJobs(client)
        self.values = values
        self.say = say
        self.wait = wait
        self.variants = variants

    def registered_instead(self, job: DeployJob) -> DeployJob | None:
        """Another variant of ``job``'s role that Nomad has registered: ``down`` or
        ``status`` without the ``--storage`` the cluster was deployed with looks for
        ``winslow-minio`` while ``winslow-seaweedfs`` runs."""
        others = (j for j in self.variants if j.role == job.role and j.id != job.id)
        return next((j for j in others if self.client.jobs.read(j.id)[0] is not None), None)

    def missing_note(self, job: DeployJob) -> str:
        """What to add where ``job`` is not registered: the variant to name instead, if any."""
        other = self.registered_instead(job)
        if other is None:
            return ""
        return f"; {other.id} is: pass --storage {other.variant} (STORAGE={other.variant})"

    def filled(self, job: DeployJob) -> dict[str, Any]:
        """The job as it will be registered; ``DeployError`` when it fails the schema."""
        filled = fill_job(job.job, self.values)
        problems = validate_jobspec(filled)
        if problems:
            raise DeployError(
                f"{job.path}: job {job.id} does not fit Nomad's job schema: {problems[0]}",
                job=job.id,
            )
        return filled

    # --- up -----------------------------------------------------------------------------

    def up(
        self, jobs: Sequence[DeployJob], timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> list[JobHealth]:
        """Register each job and wait until it is healthy, in order; the verdicts.

        Raises ``DeployError`` naming the job (and allocation) that failed or timed out.
        """
        verdicts = []
        for namespace in sorted({str(self.filled(j).get("Namespace") or "default") for j in jobs}):
            if not self.api.namespace_exists(namespace):
                raise DeployError(
                    f"Nomad has no namespace {namespace!r}. Create it first: "
                    "nomad namespace apply -description 'Winslow and its services' "
                    f"{namespace}"
                )
        for position, job in enumerate(jobs, start=1):
            filled = self.filled(job)
            self._check_variables(job.id, filled)
            self.say(f"[{position}/{len(jobs)}] {job.id}: registering ({job.role})")
            self._register(job.id, filled)
            verdicts.append(self.wait_healthy(job.id, timeout))
        return verdicts

    def _register(self, job_id: str, job: dict[str, Any]) -> None:
        try:
            self.client.jobs.register(job, enforce_index=None)
        except BackendError as exc:
            if "nonexistent namespace" in exc.message:
                namespace = job.get("Namespace", "")
                raise DeployError(
                    f"Nomad has no namespace {namespace!r} for job {job_id}. Create it first: "
                    f"nomad namespace apply {namespace}",
                    job=job_id,
                ) from exc
            raise DeployError(
                f"Nomad did not take job {job_id}: {exc.message}", job=job_id
            ) from exc

    def _check_variables(self, job_id: str, job: dict[str, Any]) -> None:
        namespace = job.get("Namespace") or self.client.config.namespace
        for path, items in sorted(needed_variables(job).items()):
            have = self.api.variable_keys(path)
            missing = sorted(items - (have or set()))
            if have is None or missing:
                what = "does not exist" if have is None else f"lacks {', '.join(missing)}"
                example = " ".join(f"{key}=..." for key in sorted(items))
                raise DeployError(
                    f"Job {job_id} reads the Nomad Variable {path} (namespace {namespace}), "
                    f"which {what}. Create it: "
                    f"nomad var put -namespace {namespace} {path} {example}",
                    job=job_id,
                )

    def health(self, job_id: str, index: int | None = None) -> tuple[JobHealth, int]:
        """The job's verdict now; with ``index``, once its allocations change or ``wait``
        passes. Returns the allocations' index for the next call."""
        allocs, last = self.client.jobs.allocations(
            job_id, index=index, wait=self.wait if index else None
        )
        job, _ = self.client.jobs.read(job_id)
        deployment, _ = self.api.latest_deployment(job_id)
        checks = {
            a["ID"]: dict(self.api.checks(a["ID"]))
            for a in allocs
            if a.get("DesiredStatus") == "run" and a.get("ClientStatus") == "running"
        }
        evals, _ = self.client.jobs.evaluations(job_id)
        blocked = next((e for e in evals if e.get("Status") == "blocked"), None)
        failures = (blocked or {}).get("FailedTGAllocs") or None
        verdict = job_health(job_id, job, allocs, deployment, checks, failures)
        return verdict, last

    def wait_healthy(self, job_id: str, timeout: float) -> JobHealth:
        """Wait until ``job_id`` is healthy, saying each change of its state; the verdict.

        Raises ``DeployError`` when Nomad marks it failed or ``timeout`` seconds pass.
        """
        deadline = time.monotonic() + timeout
        index: int | None = None
        said = ""
        while True:
            verdict, index = self.health(job_id, index)
            index = max(index, 1)
            line = verdict.line()
            if line != said:
                self.say(f"  {line}")
                said = line
            if verdict.state is HealthState.HEALTHY:
                return verdict
            if verdict.state is HealthState.FAILED:
                raise self._not_healthy(verdict, "failed")
            if time.monotonic() >= deadline:
                raise self._not_healthy(verdict, f"is not healthy after {timeout:.0f} s")

    @staticmethod
    def _not_healthy(verdict: JobHealth, what: str) -> DeployError:
        where = f", allocation {verdict.allocation[:8]}" if verdict.allocation else ""
        reason = verdict.reason or verdict.status
        return DeployError(
            f"Job {verdict.job}{where} {what}: {reason}. "
            f"`nomad alloc status {verdict.allocation[:8] or '<alloc>'}` shows more; "
            "fix it and run `winslow deploy up` again.",
            job=verdict.job,
            allocation=verdict.allocation,
        )

    # --- plan, down, status -----------------------------------------------------------------

    def plan(self, jobs: Sequence[DeployJob]) -> list[tuple[str, NomadJobPlanResponse]]:
        """What registering each job would change (Nomad's plan with its diff)."""
        return [(job.id, self.api.plan(self.filled(job))) for job in jobs]

    def down(self, jobs: Sequence[DeployJob], purge: bool = True) -> list[str]:
        """Stop (and with ``purge`` remove) each job, the last registered first; the IDs
        Nomad knew."""
        removed = []
        for job in reversed(jobs):
            answer = self.client.jobs.deregister(job.id, purge=purge)
            if answer is None or not answer.get("EvalID"):
                self.say(f"{job.id}: not registered{self.missing_note(job)}")
                continue
            self.say(f"{job.id}: {'purged' if purge else 'stopped'}")
            removed.append(job.id)
        return removed

    def status(self, jobs: Sequence[DeployJob]) -> list[JobStatus]:
        """Each job's verdict and the addresses of the services it registers."""
        result = []
        for job in jobs:
            verdict, _ = self.health(job.id)
            addresses: dict[str, list[str]] = {}
            for name in _service_names(job.job):
                # By job: the storage variants all register winslow-s3.
                instances = [i for i in self.api.service(name) if i.get("JobID") == job.id]
                if instances:
                    addresses[name] = [f"{i.get('Address')}:{i.get('Port')}" for i in instances]
            missing = verdict.state is HealthState.MISSING
            result.append(JobStatus(verdict, addresses, self.missing_note(job) if missing else ""))
        return result


def _service_names(job: dict[str, Any]) -> list[str]:
    names = []
    for group in job.get("TaskGroups") or []:
        names += [s["Name"] for s in group.get("Services") or [] if s.get("Name")]
        for task in group.get("Tasks") or []:
            names += [s["Name"] for s in task.get("Services") or [] if s.get("Name")]
    return names
