"""``NomadStandin``: one Nomad server plus client agent in-process, and its test controls.

The object owns the state store, the scheduler thread, the client (which runs tasks as
local processes under a temporary folder, or as containers of the local docker daemon
for the ``docker`` driver) and a uvicorn server on 127.0.0.1 (HTTP or HTTPS) in a
background thread. Tests talk to ``address`` over HTTP exactly as they would to a
Nomad agent, and use the methods here for what only an operator or a failure could do
to a real cluster: add a node, kill one (or cut it off and reconnect it), shrink the event
buffer, cut event streams, silence heartbeats, write a Variable, say what a simulated GPU
is busy with, refuse to pull an image.

    with NomadStandin() as nomad:
        nomad.add_node("standin-1", cpu_mhz=16000, memory_mb=32768)
        httpx.post(nomad.address + "/v1/jobs", json={"Job": job})
"""

from __future__ import annotations

import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from .app import create_app
from .executor import Client
from .scheduler import (
    ALLOC_LOST,
    ALLOC_UNKNOWN,
    Scheduler,
    keeps_unknown_on_down_node,
    new_eval,
    put_alloc,
    put_eval,
)
from .services import HealthWatcher
from .shapes import ZERO_TIME, GpuGroup, NodeSpec, rfc3339
from .state import State, alloc_terminal, now_ns

__all__ = ["NomadStandin", "StandinTls"]

JsonDict = dict[str, Any]

DOCKER_UNREACHABLE_REGISTRY = (
    'Error response from daemon: Get "https://{registry}/v2/": dial tcp: lookup {registry} '
    "on 127.0.0.53:53: no such host"
)
"""What the docker daemon answers a pull from a registry that does not resolve."""


@dataclass(frozen=True)
class StandinTls:
    """Serve HTTPS as an agent with a ``tls`` block does: ``cert``/``key`` are the agent's
    (``cert_file``, ``key_file``); with ``client_ca`` set, a client must show a certificate
    that CA signed (``ca_file`` with ``verify_https_client = true``)."""

    cert: Path
    key: Path
    client_ca: Path | None = None


class NomadStandin:
    """A stateful stand-in of the Nomad HTTP API that runs ``raw_exec``/``exec`` tasks.

    ``token``: when set, ACLs are on and every request needs it (``X-Nomad-Token``).
    ``event_buffer_size``: frames kept for ``/v1/event/stream`` (Nomad's default, 100).
    ``heartbeat_interval`` / ``log_heartbeat_interval``: seconds between ``{}`` frames.
    ``close_finished_log_streams``: end a followed log once the task is dead and all its
    output is sent; real Nomad keeps such streams open, so the default is False.
    ``variable_paths``: with ACLs on, Variable paths (globs) templates may read besides
    the job's implicit ``nomad/jobs/<job>...`` paths.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        event_buffer_size: int = 100,
        heartbeat_interval: float = 1.0,
        log_heartbeat_interval: float = 1.0,
        close_finished_log_streams: bool = False,
        variable_paths: tuple[str, ...] = (),
        root: Path | None = None,
        tls: StandinTls | None = None,
    ) -> None:
        self.token = token
        self.denied_capabilities: set[str] = set()
        """Namespace capabilities (``read-fs``, ``read-logs``) the caller's policy lacks:
        the endpoints needing one answer 403 "Permission denied"."""
        self.tls = tls
        self.heartbeat_interval = heartbeat_interval
        self.log_heartbeat_interval = log_heartbeat_interval
        self.close_finished_log_streams = close_finished_log_streams
        self.variable_paths = variable_paths
        self.heartbeats_paused = False
        self.closing = False
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="nomad-standin-")) if root is None else root
        self.state = State(event_buffer_size)
        self.client = Client(
            self.state,
            self.root / "allocs",
            on_capacity=self._capacity_changed,
            enqueue_eval=lambda eval_id, at: self.scheduler.enqueue(eval_id, at),
            variable_allowed=self._variable_allowed,
        )
        self.scheduler = Scheduler(self.state, self.client.start, self._stopped)
        self.health = HealthWatcher(self.state)
        """Service registrations, checks and deployment health (``services``)."""
        self.app = create_app(self)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``http://127.0.0.1:PORT`` (``https://`` with ``tls``) once started."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Start the scheduler and the HTTP server; return once it answers."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            access_log=False,
            **self._tls_options(),
        )
        self._server = uvicorn.Server(config)
        self.scheduler.start()
        self.health.start()
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="nomad-standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the Nomad stand-in did not start listening")
            time.sleep(0.01)

    def stop(self) -> None:
        """Kill every task process, stop serving, and remove the temp folder."""
        self.closing = True
        self.health.stop()
        self.client.shutdown()
        self.scheduler.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> NomadStandin:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- controls -----------------------------------------------------------------------

    def add_node(
        self,
        name: str,
        *,
        cpu_mhz: int = 16000,
        memory_mb: int = 32768,
        disk_mb: int = 100_000,
        gpus: list[tuple[str, int]] | tuple[tuple[str, int], ...] = (),
        drivers: tuple[str, ...] = ("raw_exec", "exec"),
        datacenter: str = "dc1",
        node_class: str = "",
        node_pool: str = "default",
        meta: dict[str, str] | None = None,
        host_volumes: dict[str, str] | None = None,
    ) -> str:
        """Register a ready node; ``gpus`` lists (model, memory MiB) per card,
        ``host_volumes`` the client's ``host_volume`` blocks (name → path). Returns its ID.

        Blocked evaluations are retried, as when a real client joins.
        """
        groups: dict[tuple[str, int], GpuGroup] = {}
        for model, memory in gpus:
            group = groups.setdefault((model, memory), GpuGroup(model, memory, []))
            group.instance_ids.append(f"GPU-{uuid.uuid4()}")
        now = now_ns()
        node = NodeSpec(
            id=str(uuid.uuid4()),
            secret_id=str(uuid.uuid4()),
            name=name,
            cpu_mhz=cpu_mhz,
            memory_mb=memory_mb,
            disk_mb=disk_mb,
            drivers=tuple(drivers),
            gpus=list(groups.values()),
            meta=dict(meta or {}),
            datacenter=datacenter,
            node_class=node_class,
            node_pool=node_pool,
            status_updated_at=now // 1_000_000_000,
            registered_at=rfc3339(now),
            host_volumes=dict(host_volumes or {}),
        )
        with self.state.lock, self.state.txn("NodeRegistration") as index:
            node.create_index = node.modify_index = index
            node.events.append(self._node_event("Node registered", index))
            self.state.nodes[node.id] = node
            # A client registering in an unknown pool creates it (nomad/fsm.go
            # applyUpsertNode with CreateNodePool; state_store.go fetchOrCreateNodePoolTxn).
            self.state.node_pools.add(node_pool)
            self.state.touch("nodes", "Node", node.id, node.to_json())
        self.scheduler.unblock()
        return node.id

    def kill_node(self, name: str, *, keep_running: bool = False) -> None:
        """The node stops heartbeating; the servers mark it down and evaluate its jobs.

        By default the machine died and its processes with it. With ``keep_running`` it
        is only cut off from the servers (a network partition): its tasks run on and it
        reports nothing until ``reconnect_node``.

        What the servers do, as Nomad 1.10.5 does: the heartbeat timer sets the node
        ``down`` with the node event "Node heartbeat missed" (nomad/heartbeat.go
        invalidateHeartbeat → Node.UpdateStatus, a NodeStreamEvent), then one
        "node-update" evaluation per job with allocations there (nomad/node_endpoint.go
        createNodeEvals, a separate raft apply). Their plan (scheduler/reconcile_util.go
        filterByTainted, scheduler/reconcile.go computeGroup):

        - a group with ``disconnect.replace = false`` and no ``lost_after``
          (``keeps_unknown_on_down_node``): a running allocation becomes ``unknown``,
          keeps DesiredStatus ``run``, gets ClientDescription "alloc is unknown since its
          node is disconnected" and an ``AllocStates`` entry
          (appendUnknownDisconnectingUpdates); it is not replaced. An ``unknown`` one
          stays as it is; any other (``pending``) is lost.
        - any other allocation is lost: ClientStatus ``lost``, DesiredStatus ``stop``,
          "alloc is lost since its node is down", and replaced up to the group's Count
          whatever its reschedule policy (reconcile.go computePlacements).

        Groups with ``lost_after`` (whose node Nomad marks ``disconnected`` instead) are
        not modelled; they are treated as above.
        """
        with self.state.lock:
            node = self.state.node_by_name(name)
        if keep_running:
            self.client.partition_node(node.id)
        else:
            self.client.lose_node(node.id)
        with self.state.lock:
            with self.state.txn("NodeStreamEvent") as index:
                node.status = "down"
                node.status_updated_at = now_ns() // 1_000_000_000
                node.modify_index = index
                node.events.append(self._node_event("Node heartbeat missed", index))
                self.state.touch("nodes", "Node", node.id, node.to_json())
            evals = self._node_update_evals(node)
            # The node-update evaluations' plan.
            with self.state.txn("PlanResult"):
                for alloc in list(self.state.allocs.values()):
                    if alloc["NodeID"] == node.id and not alloc_terminal(alloc):
                        self._disconnect(alloc)
        for eval_id in evals:
            self.scheduler.enqueue(eval_id)

    def reconnect_node(self, name: str) -> None:
        """The node cut off by ``kill_node(name, keep_running=True)`` heartbeats again.

        As in Nomad 1.10.5: the server marks it ``ready`` with the node event "Node
        reregistered by heartbeat" and evaluates its jobs (nomad/node_endpoint.go
        UpdateStatus, createNodeEvals); the client reports what its allocations did
        meanwhile (Node.UpdateAlloc, AllocationUpdated events) and kills the tasks of
        those the servers stopped meanwhile (client/allocrunner/alloc_runner.go
        handleAllocUpdate: a stopping update → killTasks), whose poststop tasks still run.
        Without ``lost_after`` the reconciler applies no reconnect logic
        (structs.go SupportsDisconnectedClients), so an allocation still wanted runs on.
        """
        with self.state.lock:
            node = self.state.node_by_name(name)
            if not self.client.partitioned(node.id):
                raise ValueError(
                    f"node {name!r} was not cut off with kill_node(keep_running=True); the "
                    "stand-in does not model a client restoring allocations whose processes died"
                )
            with self.state.txn("NodeStreamEvent") as index:
                node.status = "ready"
                node.status_updated_at = now_ns() // 1_000_000_000
                node.modify_index = index
                node.events.append(self._node_event("Node reregistered by heartbeat", index))
                self.state.touch("nodes", "Node", node.id, node.to_json())
            evals = self._node_update_evals(node)
        self.client.reconnect_node(node.id)
        for eval_id in evals:
            self.scheduler.enqueue(eval_id)
        self.scheduler.unblock()

    def drain_node(
        self, name: str, *, deadline_seconds: float = 3600, ignore_system_jobs: bool = False
    ) -> None:
        """``nomad node drain -enable -deadline``: the node takes no new allocations.

        As Nomad 1.10.5 records it (nomad/node_endpoint.go UpdateDrain, state_store.go
        updateNodeDrainImpl): ``DrainStrategy`` with the DrainSpec inlined, ``StartedAt``
        now and ``ForceDeadline`` = now + deadline for a positive deadline (Go's zero time
        for 0, "no deadline", and below 0, "force"); the node becomes ``ineligible``; a
        node event "Node drain strategy set" (subsystem ``Drain``), ``LastDrain`` with
        status ``draining``, a ``NodeDrain`` event on the Node topic. What the drainer
        then does to the allocations on the node (migrate, stop at the deadline) is not
        modelled.
        """
        now = now_ns()
        deadline_ns = int(deadline_seconds * 1_000_000_000)
        force_at = rfc3339(now + deadline_ns) if deadline_ns > 0 else ZERO_TIME
        strategy = {
            "Deadline": deadline_ns,
            "IgnoreSystemJobs": ignore_system_jobs,
            "ForceDeadline": force_at,
            "StartedAt": rfc3339(now),
        }
        with self.state.lock, self.state.txn("NodeDrain") as index:
            node = self.state.node_by_name(name)
            node.drain_strategy = strategy
            node.eligibility = "ineligible"
            node.last_drain = {
                "StartedAt": rfc3339(now),
                "UpdatedAt": rfc3339(now),
                "Status": "draining",
                "AccessorID": "",
                "Meta": None,
            }
            node.modify_index = index
            event = self._node_event("Node drain strategy set", index)
            node.events.append({**event, "Subsystem": "Drain"})
            self.state.touch("nodes", "Node", node.id, node.to_json())

    def set_eligibility(self, name: str, *, eligible: bool) -> None:
        """``nomad node eligibility -enable|-disable``: Node.UpdateEligibility sets
        ``SchedulingEligibility`` with the node event "Node marked as (in)eligible for
        scheduling" (subsystem ``Cluster``) and a ``NodeEligibility`` event; an eligible
        node has its blocked evaluations retried."""
        text = "eligible" if eligible else "ineligible"
        with self.state.lock, self.state.txn("NodeEligibility") as index:
            node = self.state.node_by_name(name)
            node.eligibility = text
            node.modify_index = index
            node.events.append(self._node_event(f"Node marked as {text} for scheduling", index))
            self.state.touch("nodes", "Node", node.id, node.to_json())
        if eligible:
            self.scheduler.unblock()

    def _node_update_evals(self, node: NodeSpec) -> list[str]:
        """One pending "node-update" evaluation per job with live allocations on ``node``."""
        affected = {
            (a["Namespace"], a["JobID"])
            for a in self.state.allocs.values()
            if a["NodeID"] == node.id and not alloc_terminal(a)
        }
        evals = []
        with self.state.txn("EvaluationUpdated") as index:
            for namespace, job_id in sorted(affected):
                job = self.state.job(namespace, job_id)
                if job is None:
                    continue
                ev = new_eval(job, "node-update", index, NodeID=node.id, NodeModifyIndex=index)
                put_eval(self.state, ev)
                evals.append(ev["ID"])
        return evals

    def _disconnect(self, alloc: JsonDict) -> None:
        """What a node-update plan does to a live allocation on a down node."""
        job = alloc["Job"]
        group = next(g for g in job["TaskGroups"] if g["Name"] == alloc["TaskGroup"])
        if keeps_unknown_on_down_node(group) and alloc["ClientStatus"] in ("running", "unknown"):
            if alloc["ClientStatus"] == "running":
                alloc["ClientStatus"] = "unknown"
                alloc["ClientDescription"] = ALLOC_UNKNOWN
                entry = {"Field": "ClientStatus", "Value": "unknown", "Time": rfc3339(now_ns())}
                alloc["AllocStates"] = [*(alloc.get("AllocStates") or []), entry]
                put_alloc(self.state, alloc)
            return
        alloc["ClientStatus"] = "lost"
        alloc["ClientDescription"] = ALLOC_LOST
        alloc["DesiredStatus"] = "stop"
        alloc["DesiredDescription"] = ALLOC_LOST
        put_alloc(self.state, alloc)

    def set_event_buffer(self, size: int) -> None:
        """Keep only the newest ``size`` event frames (older indexes fall out)."""
        self.state.set_event_buffer(size)

    def drop_event_streams(self) -> None:
        """End every open ``/v1/event/stream`` response, as a lost connection would."""
        self.state.drop_event_streams()

    def pause_heartbeats(self, paused: bool = True) -> None:
        """Stop (or resume) the ``{}`` heartbeat frames on event and log streams."""
        self.heartbeats_paused = paused

    def add_namespace(self, name: str) -> None:
        """Create a namespace; registering into an unknown one fails as in Nomad."""
        with self.state.lock:
            self.state.namespaces.add(name)

    def add_node_pool(self, name: str) -> None:
        """Create a node pool with no nodes, as ``nomad node pool apply`` does; a job in a
        pool nobody created or registered a node in is refused as in Nomad."""
        with self.state.lock:
            self.state.node_pools.add(name)

    def put_variable(self, path: str, items: dict[str, str], namespace: str = "default") -> None:
        """Write a Nomad Variable, as ``PUT /v1/var/:path`` would."""
        self.write_variable(path, items, namespace)

    def refuse_image(self, image: str, error: str | None = None) -> None:
        """Every node's docker daemon fails to pull ``image`` with ``error`` (by default,
        its registry's host does not resolve); a task using it fails as in Nomad."""
        registry = image.split("/", 1)[0]
        self.client.unpullable_images[image] = error or DOCKER_UNREACHABLE_REGISTRY.format(
            registry=registry
        )

    def set_gpu_usage(
        self,
        instance_id: str,
        percent: int,
        used_mib: int,
        *,
        celsius: int | None = None,
        watts: int | None = None,
    ) -> None:
        """What the simulated GPU ``instance_id`` reports in its node's and an allocation's
        statistics; without ``celsius`` or ``watts`` it reports no such sensor."""
        self.client.gpu_usage[instance_id] = (percent, used_mib, celsius, watts)

    def task_pids(self) -> list[int]:
        """Process IDs of task processes that are still running."""
        return self.client.process_ids()

    # --- internals ----------------------------------------------------------------------

    def write_variable(self, path: str, items: dict[str, str], namespace: str) -> JsonDict:
        with self.state.lock, self.state.txn("VariableUpserted") as index:
            current = self.state.variables.get((namespace, path))
            now = now_ns()
            var = {
                "Namespace": namespace,
                "Path": path,
                "CreateIndex": current["CreateIndex"] if current else index,
                "ModifyIndex": index,
                "CreateTime": current["CreateTime"] if current else now,
                "ModifyTime": now,
                "Items": dict(items),
            }
            self.state.variables[(namespace, path)] = var
            self.state.touch("variables")
            return dict(var)

    def _variable_allowed(self, job: JsonDict, path: str, namespace: str) -> bool:
        if self.token is None:
            return True  # ACLs off: every read is allowed
        if namespace != job["Namespace"]:
            return False
        implicit = f"nomad/jobs/{job['ID']}"
        if path in ("nomad/jobs", implicit) or path.startswith(implicit + "/"):
            return True
        return any(fnmatch(path, pattern) for pattern in self.variable_paths)

    def _tls_options(self) -> dict[str, Any]:
        if self.tls is None:
            return {}
        options: dict[str, Any] = {
            "ssl_certfile": str(self.tls.cert),
            "ssl_keyfile": str(self.tls.key),
        }
        if self.tls.client_ca is not None:
            options.update(ssl_ca_certs=str(self.tls.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
        return options

    def _stopped(self, alloc_ids: list[str]) -> None:
        self.client.stop(alloc_ids)
        # Desired-stop allocations no longer count against their node.
        self.scheduler.unblock()

    def _capacity_changed(self) -> None:
        self.scheduler.unblock()

    @staticmethod
    def _node_event(message: str, index: int) -> JsonDict:
        return {
            "Message": message,
            "Subsystem": "Cluster",
            "Details": None,
            "Timestamp": rfc3339(now_ns()),
            "CreateIndex": index,
        }
