"""Service jobs in the stand-in: ports, Nomad service registrations, checks, deployments.

Ports: a group's ``network`` ports are assigned at placement as Nomad's network index
does, a ``ReservedPorts`` value as written, a ``DynamicPorts`` one from a free port of
127.0.0.1 (Nomad picks from 20000-32000; the stand-in asks the kernel so that parallel
tests cannot collide). They land in ``AllocatedResources.Shared.Ports`` and, in every
task's environment, as ``NOMAD_PORT_<label>``, ``NOMAD_HOST_PORT_<label>``,
``NOMAD_IP_<label>`` and ``NOMAD_ADDR_<label>`` (client/taskenv/env.go ``buildPortEnv``).

Services with ``provider = "nomad"`` are registered while their allocation runs and
removed once it is terminal (client/serviceregistration/nsd); ``GET /v1/services`` and
``GET /v1/service/:name`` answer ``structs.ServiceRegistration`` lists. Their ``http``
and ``tcp`` checks run for real against the allocation's address every ``interval``;
``GET /v1/client/allocation/:id/checks`` answers the latest result of each
(client/serviceregistration/checks ``QueryResult``: ``Status`` ``success``/``failure``/
``pending``, ``Timestamp`` in Unix seconds).

Deployments: a service job version whose groups have an ``update`` block with
``max_parallel > 0`` (the default Nomad fills in) gets a deployment when the scheduler
places it (scheduler/reconcile.go). Each of its allocations is judged by the client's
health tracker (client/allochealth/tracker.go): with ``health_check = "checks"`` healthy
once every task runs and every check passes, with ``"task_states"`` once every task
runs, in both cases without interruption for ``min_healthy_time``; unhealthy when a task
fails or ``healthy_deadline`` passes first, with an ``Alloc Unhealthy`` task event. The
deployment watcher then marks the deployment successful when every group has its
``DesiredTotal`` healthy, failed on the first unhealthy allocation or when
``progress_deadline`` passes, cancelled when the job stops or a newer version replaces it;
descriptions are Nomad's (nomad/structs/structs.go ``DeploymentStatusDescription*``).
"""

from __future__ import annotations

import contextlib
import copy
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from .scheduler import put_alloc
from .shapes import new_id, rfc3339, task_event
from .state import alloc_terminal, now_ns

if TYPE_CHECKING:
    from .state import State

__all__ = [
    "HealthWatcher",
    "assign_ports",
    "attach_deployment",
    "cancel_deployments",
    "port_env",
]

JsonDict = dict[str, Any]
SECOND = 1_000_000_000
RUNNING = "Deployment is running"
SUCCESSFUL = "Deployment completed successfully"
FAILED_ALLOCS = "Failed due to unhealthy allocations"
FAILED_PROGRESS = "Failed due to progress deadline"
CANCELLED_STOPPED = "Cancelled because job is stopped"
CANCELLED_NEWER = "Cancelled due to newer version of job"
HOST_IP = "127.0.0.1"


# --- ports ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST_IP, 0))
        return int(sock.getsockname()[1])


def assign_ports(alloc: JsonDict, group: JsonDict) -> None:
    """Give ``alloc`` the ports its group's networks ask for (``AllocatedPorts``)."""
    ports = []
    for network in group.get("Networks") or []:
        for port in network.get("ReservedPorts") or []:
            ports.append(
                {
                    "Label": port["Label"],
                    "Value": port["Value"],
                    "To": port.get("To", 0),
                    "HostIP": HOST_IP,
                }
            )
        for port in network.get("DynamicPorts") or []:
            ports.append(
                {
                    "Label": port["Label"],
                    "Value": _free_port(),
                    "To": port.get("To", 0),
                    "HostIP": HOST_IP,
                }
            )
    if ports:
        alloc["AllocatedResources"]["Shared"]["Ports"] = ports


def port_env(ports: list[JsonDict] | None) -> dict[str, str]:
    """The ``NOMAD_*`` port variables of a task (``buildPortEnv``)."""
    env = {}
    for port in ports or []:
        label = port["Label"].replace("-", "_")
        inside = port["To"] if port["To"] > 0 else port["Value"]
        env[f"NOMAD_PORT_{label}"] = str(inside)
        env[f"NOMAD_HOST_PORT_{label}"] = str(port["Value"])
        env[f"NOMAD_IP_{label}"] = port["HostIP"]
        env[f"NOMAD_ADDR_{label}"] = f"{port['HostIP']}:{port['Value']}"
        env[f"NOMAD_HOST_ADDR_{label}"] = f"{port['HostIP']}:{port['Value']}"
    return env


# --- deployments ---------------------------------------------------------------------------


def _wants_deployment(job: JsonDict) -> bool:
    return job["Type"] == "service" and any(
        (g.get("Update") or {}).get("MaxParallel", 0) > 0 for g in job["TaskGroups"]
    )


def put_deployment(state: State, deployment: JsonDict) -> None:
    """Insert or update ``deployment`` inside the open transaction, with its event."""
    index = state.touch(
        "deployment",
        "Deployment",
        deployment["ID"],
        None,
        namespace=deployment["Namespace"],
        filter_keys=[deployment["JobID"]],
    )
    if deployment["ID"] not in state.deployments:
        deployment["CreateIndex"] = index
    deployment["ModifyIndex"] = index
    deployment["ModifyTime"] = now_ns()
    state.deployments[deployment["ID"]] = deployment
    state.set_payload("Deployment", deployment["ID"], deployment)


def job_deployments(state: State, namespace: str, job_id: str) -> list[JsonDict]:
    """The job's deployments, newest first."""
    found = [
        d
        for d in state.deployments.values()
        if d["Namespace"] == namespace and d["JobID"] == job_id
    ]
    return sorted(found, key=lambda d: d["CreateIndex"], reverse=True)


def attach_deployment(state: State, job: JsonDict, alloc: JsonDict) -> None:
    """Create the job version's deployment if it has none, and count ``alloc`` in it."""
    if not _wants_deployment(job):
        return
    current = next(
        (
            d
            for d in job_deployments(state, job["Namespace"], job["ID"])
            if d["JobVersion"] == job["Version"]
        ),
        None,
    )
    if current is None:
        for older in job_deployments(state, job["Namespace"], job["ID"]):
            if older["Status"] == "running":
                older.update(Status="cancelled", StatusDescription=CANCELLED_NEWER)
                put_deployment(state, older)
        now = now_ns()
        groups = {}
        for group in job["TaskGroups"]:
            update = group.get("Update") or {}
            groups[group["Name"]] = {
                "AutoRevert": bool(update.get("AutoRevert")),
                "AutoPromote": bool(update.get("AutoPromote")),
                "ProgressDeadline": update.get("ProgressDeadline", 0),
                "RequireProgressBy": rfc3339(now + int(update.get("ProgressDeadline") or 0)),
                "Promoted": False,
                "PlacedCanaries": None,
                "DesiredCanaries": 0,
                "DesiredTotal": group["Count"],
                "PlacedAllocs": 0,
                "HealthyAllocs": 0,
                "UnhealthyAllocs": 0,
            }
        current = {
            "ID": new_id(),
            "Namespace": job["Namespace"],
            "JobID": job["ID"],
            "JobVersion": job["Version"],
            "JobModifyIndex": job["JobModifyIndex"],
            "JobSpecModifyIndex": job["JobModifyIndex"],
            "JobCreateIndex": job["CreateIndex"],
            "IsMultiregion": False,
            "TaskGroups": groups,
            "Status": "running",
            "StatusDescription": RUNNING,
            "CreateIndex": 0,
            "ModifyIndex": 0,
            "CreateTime": now,
            "ModifyTime": now,
        }
    if current["Status"] != "running":
        return
    current["TaskGroups"][alloc["TaskGroup"]]["PlacedAllocs"] += 1
    put_deployment(state, current)
    alloc["DeploymentID"] = current["ID"]


def cancel_deployments(state: State, namespace: str, job_id: str) -> None:
    """A stopped or purged job cancels its running deployment."""
    for deployment in job_deployments(state, namespace, job_id):
        if deployment["Status"] == "running":
            deployment.update(Status="cancelled", StatusDescription=CANCELLED_STOPPED)
            put_deployment(state, deployment)


# --- the client's health tracker, checks and registrations ----------------------------------


class HealthWatcher:
    """One thread: registers services, runs checks, judges allocations and deployments."""

    def __init__(self, state: State, interval: float = 0.1) -> None:
        self.state = state
        self.interval = interval
        self.checks: dict[str, dict[str, JsonDict]] = {}
        """Allocation ID → check ID → latest result."""
        self._next_run: dict[tuple[str, str], float] = {}
        self._healthy_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="standin-health", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a watcher bug must not stop the next round
                self.tick()

    def tick(self) -> None:
        with self.state.lock:
            # Only service-minded allocations; a stage job's batch allocations need nothing.
            allocs = [
                copy.deepcopy(a)
                for a in self.state.allocs.values()
                if a["DeploymentID"] or a["Job"]["Type"] == "service"
            ]
        for alloc in allocs:
            self._sync_registrations(alloc)
            if not alloc_terminal(alloc) and alloc["ClientStatus"] == "running":
                self._run_checks(alloc)
            if (
                alloc["DeploymentID"]
                and (alloc.get("DeploymentStatus") or {}).get("Healthy") is None
            ):
                self._judge(alloc)
        self._watch_deployments()

    # registrations

    def _services(self, alloc: JsonDict) -> list[tuple[JsonDict, str]]:
        job = alloc["Job"]
        group = next(g for g in job["TaskGroups"] if g["Name"] == alloc["TaskGroup"])
        found = [(s, "") for s in group.get("Services") or []]
        for task in group["Tasks"]:
            found += [(s, task["Name"]) for s in task.get("Services") or []]
        return [(s, t) for s, t in found if (s.get("Provider") or "consul") == "nomad"]

    def _sync_registrations(self, alloc: JsonDict) -> None:
        state = self.state
        live = not alloc_terminal(alloc) and alloc["ClientStatus"] == "running"
        with state.lock:
            have = [r for r in state.services.values() if r["AllocID"] == alloc["ID"]]
            if live and not have:
                ports = {
                    p["Label"]: p for p in alloc["AllocatedResources"]["Shared"]["Ports"] or []
                }
                node = state.nodes[alloc["NodeID"]]
                with state.txn("ServiceRegistration"):
                    for service, task in self._services(alloc):
                        port = ports.get(service.get("PortLabel") or "")
                        owner = task or f"group-{alloc['TaskGroup']}"
                        label = service.get("PortLabel") or ""
                        reg_id = f"_nomad-task-{alloc['ID']}-{owner}-{service['Name']}-{label}"
                        index = state.touch(
                            "service_registrations",
                            "Service",
                            reg_id,
                            None,
                            namespace=alloc["Namespace"],
                        )
                        state.services[reg_id] = {
                            "ID": reg_id,
                            "ServiceName": service["Name"],
                            "Namespace": alloc["Namespace"],
                            "NodeID": alloc["NodeID"],
                            "Datacenter": node.datacenter,
                            "JobID": alloc["JobID"],
                            "AllocID": alloc["ID"],
                            "Tags": service.get("Tags") or [],
                            "Address": port["HostIP"] if port else HOST_IP,
                            "Port": port["Value"] if port else 0,
                            "CreateIndex": index,
                            "ModifyIndex": index,
                        }
            elif not live and have:
                with state.txn("ServiceDeregistration"):
                    for reg in have:
                        state.touch(
                            "service_registrations",
                            "Service",
                            reg["ID"],
                            None,
                            namespace=reg["Namespace"],
                        )
                        del state.services[reg["ID"]]

    # checks

    def _run_checks(self, alloc: JsonDict) -> None:
        ports = {p["Label"]: p for p in alloc["AllocatedResources"]["Shared"]["Ports"] or []}
        results = self.checks.setdefault(alloc["ID"], {})
        for service, task in self._services(alloc):
            for check in service.get("Checks") or []:
                check_id = f"{alloc['ID'][:8]}-{service['Name']}-{check['Name']}"
                key = (alloc["ID"], check_id)
                if time.monotonic() < self._next_run.get(key, 0.0):
                    continue
                interval = (check.get("Interval") or 10 * SECOND) / SECOND
                self._next_run[key] = time.monotonic() + interval
                port = ports.get(check.get("PortLabel") or service.get("PortLabel") or "")
                status, code, output = _probe(check, port)
                results[check_id] = {
                    "ID": check_id,
                    "Check": check["Name"],
                    "Group": f"{alloc['JobID']}.{alloc['TaskGroup']}[0]",
                    "Mode": "healthiness",
                    "Output": output,
                    "Service": service["Name"],
                    "Task": task,
                    "Status": status,
                    "StatusCode": code,
                    "Timestamp": int(time.time()),
                }

    def check_results(self, alloc_id: str) -> dict[str, JsonDict]:
        return copy.deepcopy(self.checks.get(alloc_id, {}))

    # health of one allocation

    def _judge(self, alloc: JsonDict) -> None:
        job = alloc["Job"]
        group = next(g for g in job["TaskGroups"] if g["Name"] == alloc["TaskGroup"])
        update = group.get("Update") or {}
        states = alloc["TaskStates"] or {}
        main = [t["Name"] for t in group["Tasks"] if not (t.get("Lifecycle") or {}).get("Hook")]
        min_healthy = (update.get("MinHealthyTime") or 0) / SECOND
        deadline = alloc["CreateTime"] + int(update.get("HealthyDeadline") or 5 * 60 * SECOND)
        failed = [n for n, s in states.items() if s["State"] == "dead" and s["Failed"]]
        if failed:
            self._set_health(alloc, False, "Unhealthy because of failed task")
            return
        running = bool(main) and all(states.get(n, {}).get("State") == "running" for n in main)
        ok = running
        if update.get("HealthCheck", "checks") == "checks":
            results = self.checks.get(alloc["ID"], {})
            wanted = sum(len(s.get("Checks") or []) for s, _ in self._services(alloc))
            ok = (
                ok
                and len(results) == wanted
                and all(r["Status"] == "success" for r in results.values())
            )
        restarted = sum(s.get("Restarts", 0) for s in states.values())
        key = f"{alloc['ID']}/{restarted}"
        if not ok:
            self._healthy_since.pop(key, None)
        else:
            since = self._healthy_since.setdefault(key, time.monotonic())
            if time.monotonic() - since >= min_healthy:
                self._set_health(alloc, True, "")
                return
        if now_ns() > deadline:
            if update.get("HealthCheck", "checks") == "checks" and running:
                reason = "Services not healthy by deadline"
            else:
                reason = (
                    "Task not running for min_healthy_time of "
                    f"{_dur(update.get('MinHealthyTime', 0))} by healthy_deadline of "
                    f"{_dur(update.get('HealthyDeadline', 0))}"
                )
            self._set_health(alloc, False, reason)

    def _set_health(self, alloc: JsonDict, healthy: bool, reason: str) -> None:
        state = self.state
        with state.lock, state.txn("AllocationUpdated"):
            live = state.allocs.get(alloc["ID"])
            if live is None or (live.get("DeploymentStatus") or {}).get("Healthy") is not None:
                return
            live["DeploymentStatus"] = {
                "Healthy": healthy,
                "Timestamp": rfc3339(now_ns()),
                "Canary": False,
                "ModifyIndex": state.index,
            }
            if not healthy:
                for task_state in (live["TaskStates"] or {}).values():
                    task_state["Events"].append(
                        task_event(
                            "Alloc Unhealthy", now_ns(), Message=reason, DisplayMessage=reason
                        )
                    )
            put_alloc(state, live)
            deployment = state.deployments.get(live["DeploymentID"])
            if deployment is not None:
                counts = deployment["TaskGroups"][live["TaskGroup"]]
                counts["HealthyAllocs" if healthy else "UnhealthyAllocs"] += 1
                put_deployment(state, deployment)

    def _watch_deployments(self) -> None:
        state = self.state
        with state.lock:
            for deployment in list(state.deployments.values()):
                if deployment["Status"] != "running":
                    continue
                groups = deployment["TaskGroups"].values()
                if any(g["UnhealthyAllocs"] for g in groups):
                    status = ("failed", FAILED_ALLOCS)
                elif all(g["HealthyAllocs"] >= g["DesiredTotal"] for g in groups):
                    status = ("successful", SUCCESSFUL)
                elif any(
                    g["ProgressDeadline"]
                    and now_ns() > deployment["CreateTime"] + g["ProgressDeadline"]
                    for g in groups
                ):
                    status = ("failed", FAILED_PROGRESS)
                else:
                    continue
                with state.txn("DeploymentStatusUpdate"):
                    deployment["Status"], deployment["StatusDescription"] = status
                    put_deployment(state, deployment)
                    if status[0] == "successful":
                        job = state.job(deployment["Namespace"], deployment["JobID"])
                        if job is not None and job["Version"] == deployment["JobVersion"]:
                            job["Stable"] = True


def _probe(check: JsonDict, port: JsonDict | None) -> tuple[str, int, str]:
    """Run one check; (status, HTTP status code, output) as Nomad's checker reports."""
    if port is None:
        return "failure", 0, "nomad: no port for check"
    timeout = (check.get("Timeout") or 5 * SECOND) / SECOND
    address = f"{port['HostIP']}:{port['Value']}"
    if check["Type"] == "tcp":
        try:
            with socket.create_connection((port["HostIP"], port["Value"]), timeout=timeout):
                return "success", 0, "nomad: tcp ok"
        except OSError as exc:
            return "failure", 0, f"dial tcp {address}: {exc}"
    url = f"{check.get('Protocol') or 'http'}://{address}{check.get('Path') or '/'}"
    try:
        # The client checks the address directly; a proxy from the environment has no say.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=timeout) as response:
            return "success", response.status, "nomad: http ok"
    except urllib.error.HTTPError as exc:
        return "failure", exc.code, f"nomad: http response code {exc.code}"
    except OSError as exc:
        return "failure", 0, f"nomad: {exc}"


def _dur(ns: int) -> str:
    seconds = int(ns) // SECOND
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
