"""The stand-in's client agent: runs placed allocations as real local processes.

Each allocation gets an alloc runner thread and an alloc dir under the stand-in's temp
folder (``alloc/``, ``alloc/logs/``, ``alloc/data/``, ``<task>/local``,
``<task>/secrets``, ``<task>/tmp``), as a Nomad client lays it out. ``raw_exec`` and
``exec`` tasks run as subprocesses in their own process group; ``exec`` gets no host
environment (Nomad's chroot would hide it) but is not isolated otherwise. ``docker``
tasks run in the local docker daemon (``docker_driver``); other drivers fail with a
``Driver Failure`` event. A driver that cannot start a task emits ``Driver Failure``
and the restart policy decides, as Nomad's task runner does (``runDriver``).

While a task runs, its process tree is measured every ``stats_interval`` (Nomad's
``collection_interval``, 1 s) as Nomad's basic executor measures it: RSS and swap of every
process, and CPU time turned into percent of one core since the previous collection
(the very first collection only sets that baseline, where Nomad would report 0 %).
``/v1/client/allocation/:id/stats`` answers the latest figures of the running tasks,
with GPU statistics in the nvidia plugin's shape for their devices: the simulated GPUs
report what a test set with ``NomadStandin.set_gpu_usage``, 0 % and 0 MiB otherwise.

The lifecycle follows Nomad's task runner: ``Received`` and ``Task Setup`` for every
task, prestart tasks first (all must exit 0), then the main tasks (prestart sidecars
alongside), poststart tasks once every main task has left ``pending``
(client/allocrunner/tasklifecycle/coordinator.go ``isMainDone``), then poststop tasks,
which run even after a failure or a stop. Once the main tasks are dead the sidecars get
``Main Tasks Dead`` and are killed with their kill signal, last of all on a stop too
(alloc_runner.go ``handleTaskStateUpdates``, ``killTasks``); a sidecar that fails kills
the main tasks as any failed sibling does (``TaskSiblingFailed``). Each task's environment
is Nomad's: the ``NOMAD_*`` variables, ``NOMAD_META_*`` from job, group and task meta,
``Env`` interpolated against node attributes and that environment, then the variables
of ``env = true`` templates, which are not interpolated. Templates render before the
task starts and wait for a missing Nomad Variable, as consul-template does. The restart
policy applies (``Attempts: 0`` means none), and the client status follows Nomad's
``getClientStatus``: failed once a task failed, running while one runs, complete when
all are dead.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import psutil

from . import docker_driver
from .docker_driver import ConfigValidationError, DockerContainer, DriverStartError
from .envfile import EnvParseError, parse_env_file
from .scheduler import new_eval, put_alloc, put_eval, reschedule_delay
from .services import port_env
from .shapes import (
    GpuFigures,
    alloc_resource_usage,
    gpu_group_stats,
    host_stats,
    new_task_state,
    resource_usage,
    rfc3339,
    task_event,
    task_resource_usage,
)
from .state import State, alloc_terminal, now_ns
from .templates import (
    MissingVariableError,
    TemplateError,
    go_quote,
    render_template,
    replace_env,
)

if TYPE_CHECKING:
    from .shapes import NodeSpec

__all__ = ["Client"]

log = logging.getLogger(__name__)
JsonDict = dict[str, Any]
SECOND = 1_000_000_000
# Nomad's default client env.denylist: never handed to tasks that see the host env.
ENV_DENYLIST = frozenset(
    {
        "CONSUL_TOKEN",
        "CONSUL_HTTP_TOKEN",
        "CONSUL_HTTP_AUTH",
        "VAULT_TOKEN",
        "NOMAD_LICENSE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
    }
)
HOST_DRIVERS = frozenset({"raw_exec", "exec"})
EXEC_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def client_status(task_states: dict[str, JsonDict]) -> tuple[str, str]:
    """Nomad's ``getClientStatus`` for an allocation's task states."""
    states = list(task_states.values())
    if any(s["State"] == "dead" and s["Failed"] for s in states):
        return "failed", "Failed tasks"
    if any(s["State"] == "running" for s in states):
        return "running", "Tasks are running"
    if any(s["State"] == "pending" for s in states):
        return "pending", "No tasks have started"
    return "complete", "All tasks have completed"


class Client:
    """All client nodes of the stand-in: one alloc runner per allocation."""

    def __init__(
        self,
        state: State,
        root: Path,
        *,
        on_capacity: Callable[[], None],
        enqueue_eval: Callable[[str, int], None],
        variable_allowed: Callable[[JsonDict, str, str], bool],
    ) -> None:
        self.state = state
        self.root = root
        self._on_capacity = on_capacity
        self._enqueue_eval = enqueue_eval
        self._variable_allowed = variable_allowed
        self._runners: dict[str, _AllocRunner] = {}
        self._lock = threading.Lock()
        self._partitioned: set[str] = set()
        """Nodes cut off from the servers (guarded by the state's lock)."""
        self.stats_interval = 1.0
        """Seconds between two measurements of a running task (Nomad's default)."""
        self.gpu_usage: dict[str, tuple[int, int, int | None, int | None]] = {}
        """GPU instance ID → (utilisation %, used MiB, °C, W) its statistics report."""
        self.unpullable_images: dict[str, str] = {}
        """Image → the docker daemon's error when a node pulls it (``refuse_image``)."""

    def alloc_dir(self, alloc_id: str) -> Path:
        return self.root / alloc_id

    def start(self, alloc_ids: list[str]) -> None:
        """Hand placed allocations to their node's client."""
        for alloc_id in alloc_ids:
            runner = _AllocRunner(self, alloc_id)
            # Started under the lock: ``shutdown`` must never find a runner it cannot join.
            with self._lock:
                self._runners[alloc_id] = runner
                runner.start()

    def stop(self, alloc_ids: list[str]) -> None:
        """The server set DesiredStatus stop: kill the allocations' tasks (a node cut off
        from the servers hears of it only when it reconnects)."""
        for alloc_id in alloc_ids:
            with self._lock:
                runner = self._runners.get(alloc_id)
            with self.state.lock:
                offline = runner is not None and runner.offline is not None
            if runner is not None and not offline:
                runner.request_stop()

    def lose_node(self, node_id: str) -> None:
        """The node died: its processes die with it and it reports nothing more."""
        for runner in self._node_runners(node_id):
            runner.lose()

    def partition_node(self, node_id: str) -> None:
        """The node is cut off from the servers: its tasks run on, and what they do stays
        on the node (each runner's own copy of its allocation) until ``reconnect_node``."""
        with self.state.lock:
            self._partitioned.add(node_id)
            for runner in self._node_runners(node_id):
                alloc = self.state.allocs.get(runner.alloc_id)
                if alloc is not None and not runner.lost:
                    runner.offline = copy.deepcopy(alloc)

    def partitioned(self, node_id: str) -> bool:
        with self.state.lock:
            return node_id in self._partitioned

    def reconnect_node(self, node_id: str) -> None:
        """The node reaches the servers again: report every allocation's state as it is on
        the node (Node.UpdateAlloc), then kill those the servers stopped meanwhile."""
        stopping = []
        with self.state.lock:
            self._partitioned.discard(node_id)
            reports = []
            for runner in self._node_runners(node_id):
                local, runner.offline = runner.offline, None
                if local is None:
                    continue
                reports.append((runner, local["TaskStates"]))
                alloc = self.state.allocs.get(runner.alloc_id)
                if alloc is None or alloc["DesiredStatus"] in ("stop", "evict"):
                    stopping.append(runner)
        for runner, task_states in reports:
            if task_states is not None:
                self.update_alloc(runner, lambda alloc, ts=task_states: alloc.update(TaskStates=ts))
        for runner in stopping:
            runner.request_stop()

    def gpu_figures(self, instance_id: str, total_mib: int) -> GpuFigures:
        """What GPU ``instance_id`` reports: as ``set_gpu_usage`` said, idle otherwise."""
        busy, used, celsius, watts = self.gpu_usage.get(instance_id, (0, 0, None, None))
        return (busy, used, total_mib, celsius, watts)

    def host_stats(self, node: NodeSpec) -> JsonDict:
        """The node's ``HostStats`` as its client measures them: what its running tasks
        use (their CPU spread over the node's cores, their resident memory, the size of
        their allocation directories) on a machine of the node's size, and each of its
        GPUs as ``set_gpu_usage`` says (0 % and 0 MiB otherwise)."""
        now = now_ns()
        busy = rss = ticks = 0.0
        used_disk = 0
        for runner in self._node_runners(node.id):
            usage = runner.stats()["ResourceUsage"]
            busy += float(usage["CpuStats"]["Percent"])
            ticks += float(usage["CpuStats"]["TotalTicks"])
            rss += float(usage["MemoryStats"]["RSS"])
            for path in runner.dir.rglob("*"):
                with contextlib.suppress(OSError):
                    if path.is_file():
                        used_disk += path.stat().st_size
        per_core = min(busy / node.cores, 100.0)
        devices = [
            gpu_group_stats(
                group.model,
                {i: self.gpu_figures(i, group.memory_mib) for i in group.instance_ids},
                now,
            )
            for group in node.gpus
        ]
        return host_stats(
            cores=[per_core] * node.cores,
            memory_total=node.memory_mb * 1024 * 1024,
            memory_used=int(rss),
            disk_size=node.disk_mb * 1024 * 1024,
            disk_used=used_disk,
            devices=devices,
            # The client's machine came up when the node last became ready.
            uptime=max(int(time.time()) - node.status_updated_at, 0),
            ticks=ticks,
            now=now,
        )

    def _node_runners(self, node_id: str) -> list[_AllocRunner]:
        with self._lock:
            return [r for r in self._runners.values() if r.node_id == node_id]

    def shutdown(self) -> None:
        """Kill every task process the stand-in started and wait for the runners."""
        with self._lock:
            runners = list(self._runners.values())
        for runner in runners:
            runner.lose()
        for runner in runners:
            runner.join(5)

    def alloc_stats(self, alloc_id: str) -> JsonDict | None:
        """The allocation's ``AllocResourceUsage``; None when this client never ran it."""
        with self._lock:
            runner = self._runners.get(alloc_id)
        return None if runner is None else runner.stats()

    def process_ids(self) -> list[int]:
        """PIDs of task processes still running (for teardown checks)."""
        with self._lock:
            runners = list(self._runners.values())
        return [pid for runner in runners for pid in runner.pids()]

    # --- reporting to the server ------------------------------------------------------

    def update_alloc(self, runner: _AllocRunner, change: Callable[[JsonDict], None]) -> None:
        """Apply a client-side change to the allocation, as Node.UpdateAlloc would."""
        if runner.lost:
            return
        state = self.state
        became_terminal = False
        follow_up: tuple[str, int] | None = None
        with state.lock:
            if runner.offline is not None:
                # Cut off from the servers: the client keeps its own view until it reconnects.
                change(runner.offline)
                if runner.offline["TaskStates"]:
                    status, description = client_status(runner.offline["TaskStates"])
                    if runner.finished or status != "complete":
                        runner.offline["ClientStatus"] = status
                        runner.offline["ClientDescription"] = description
                return
            alloc = state.allocs.get(runner.alloc_id)
            if alloc is None or runner.lost:
                return
            was_terminal = alloc_terminal(alloc)
            with state.txn("AllocationUpdated"):
                change(alloc)
                if alloc["TaskStates"]:
                    status, description = client_status(alloc["TaskStates"])
                    if runner.finished or status != "complete":
                        alloc["ClientStatus"], alloc["ClientDescription"] = status, description
                put_alloc(state, alloc)
                became_terminal = not was_terminal and alloc_terminal(alloc)
                if became_terminal and alloc["ClientStatus"] == "failed":
                    follow_up = self._follow_up_eval(alloc)
        if follow_up is not None:
            self._enqueue_eval(*follow_up)
        if became_terminal:
            self._on_capacity()

    def _follow_up_eval(self, alloc: JsonDict) -> tuple[str, int] | None:
        """A failed allocation the reschedule policy allows gets a delayed evaluation."""
        if alloc["DesiredStatus"] != "run":
            return None
        job = self.state.job(alloc["Namespace"], alloc["JobID"])
        if job is None or job["Stop"] or job["Version"] != alloc["Job"]["Version"]:
            return None
        group = next(g for g in job["TaskGroups"] if g["Name"] == alloc["TaskGroup"])
        now = now_ns()
        delay = reschedule_delay(group, alloc, now)
        if delay is None:
            return None
        ev = new_eval(job, "alloc-failure", self.state.index, WaitUntil=rfc3339(now + delay))
        put_eval(self.state, ev)
        alloc["FollowupEvalID"] = ev["ID"]
        put_alloc(self.state, alloc)
        return ev["ID"], now + delay


class _TaskKilledError(Exception):
    """The task was told to stop before or while it ran."""


class _AllocRunner:
    def __init__(self, client: Client, alloc_id: str) -> None:
        self.client = client
        self.alloc_id = alloc_id
        self.stop_requested = threading.Event()
        self.lost = False
        self.finished = False
        self.offline: JsonDict | None = None
        """The allocation as the node sees it while cut off from the servers (else None)."""
        self._procs: dict[str, subprocess.Popen[bytes] | DockerContainer] = {}
        self._killed: set[str] = set()
        self._lock = threading.Lock()
        self._usage: dict[str, JsonDict] = {}
        """Task → its latest ``TaskResourceUsage``, while it runs."""
        self._looks: dict[str, tuple[int, float, float, float]] = {}
        """Task → (pid, user CPU s, system CPU s, monotonic time) of its last measurement."""
        with client.state.lock:
            alloc = client.state.allocs[alloc_id]
            self.node_id: str = alloc["NodeID"]
            self.job: JsonDict = alloc["Job"]
            self.group: JsonDict = next(
                g for g in self.job["TaskGroups"] if g["Name"] == alloc["TaskGroup"]
            )
            self.alloc_name: str = alloc["Name"]
            self.devices: JsonDict = alloc["AllocatedResources"]["Tasks"]
            self.ports: list[JsonDict] | None = alloc["AllocatedResources"]["Shared"]["Ports"]
            self.node: NodeSpec = client.state.nodes[self.node_id]
        self.dir = client.alloc_dir(alloc_id)
        self._thread = threading.Thread(target=self._run, name=f"alloc-{alloc_id[:8]}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._procs.values() if p.poll() is None]

    def request_stop(self) -> None:
        self.stop_requested.set()

    # --- resource usage ---------------------------------------------------------------

    def stats(self) -> JsonDict:
        """The latest figures of the running tasks, with their GPUs' statistics added now
        (as Nomad's task runner adds device statistics when they are asked for)."""
        now = now_ns()
        with self._lock:
            tasks = {name: dict(usage) for name, usage in self._usage.items()}
        for name, usage in tasks.items():
            inner = dict(usage["ResourceUsage"])
            inner["DeviceStats"] = self._device_stats(name, now)
            usage["ResourceUsage"] = inner
        return alloc_resource_usage(tasks, now)

    def _device_stats(self, task_name: str, now: int) -> list[JsonDict] | None:
        groups = []
        totals = {g.model: g.memory_mib for g in self.node.gpus}
        for device in self.devices.get(task_name, {}).get("Devices") or []:
            if device["Type"] != "gpu":
                continue
            instances = {}
            for device_id in device["DeviceIDs"]:
                instances[device_id] = self.client.gpu_figures(
                    device_id, totals.get(device["Name"], 0)
                )
            groups.append(gpu_group_stats(device["Name"], instances, now))
        return groups or None

    def _collect(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """Measure the task's process tree, as Nomad's executor does each interval."""
        try:
            root = psutil.Process(proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        user = system = 0.0
        rss = swap = 0
        for member in tree:
            try:
                times = member.cpu_times()
                rss += member.memory_info().rss
            except psutil.Error:
                continue  # it ended while being measured
            user += times.user
            system += times.system
            swap += _swap_bytes(member.pid)
        at = time.monotonic()
        with self._lock:
            before = self._looks.get(name)
            self._looks[name] = (proc.pid, user, system, at)
        if before is None or before[0] != proc.pid or at <= before[3]:
            return
        elapsed = at - before[3]
        # A process that ended takes its CPU time with it; that is no negative use.
        user_percent = max(user - before[1], 0.0) / elapsed * 100
        system_percent = max(system - before[2], 0.0) / elapsed * 100
        percent = user_percent + system_percent
        mhz_per_core = self.node.cpu_mhz / max(self.node.cpu_mhz // 1000, 1)
        usage = resource_usage(
            rss=rss,
            swap=swap,
            percent=percent,
            user_percent=user_percent,
            system_percent=system_percent,
            ticks=percent / 100 * mhz_per_core,
        )
        with self._lock:
            if name in self._looks:
                self._usage[name] = task_resource_usage(usage, now_ns())

    def _forget_usage(self, name: str) -> None:
        with self._lock:
            self._usage.pop(name, None)
            self._looks.pop(name, None)

    def lose(self) -> None:
        """SIGKILL every process group at once; report nothing from now on."""
        self.lost = True
        self.stop_requested.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            _kill_group(proc, signal.SIGKILL)
        # A dead machine's processes are gone when it is seen dead; a loaded test machine
        # takes a moment to end a killed one, and `pids()` would still count it.
        for proc in procs:
            if isinstance(proc, subprocess.Popen):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)

    # --- task state bookkeeping -----------------------------------------------------------

    def _task_update(self, name: str, event: JsonDict | None = None, **fields: Any) -> None:
        def change(alloc: JsonDict) -> None:
            states = alloc["TaskStates"]
            task_state = states[name]
            if event is not None:
                task_state["Events"].append(event)
            task_state.update(fields)

        self.client.update_alloc(self, change)

    def _event(self, name: str, event_type: str, **fields: Any) -> None:
        self._task_update(name, task_event(event_type, now_ns(), **fields))

    def _dead(self, name: str, failed: bool, event: JsonDict | None = None) -> None:
        self._task_update(name, event, State="dead", Failed=failed, FinishedAt=rfc3339(now_ns()))

    # --- the allocation -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._run_alloc()
        except Exception:  # an executor bug must show up as a failed task, not a hang
            log.exception("stand-in client: allocation %s crashed", self.alloc_id)
            self.finished = True
            for task in self.group["Tasks"]:
                self._dead(
                    task["Name"],
                    True,
                    task_event(
                        "Driver Failure",
                        now_ns(),
                        DriverError="stand-in executor crashed",
                        FailsTask=True,
                    ),
                )

    def _run_alloc(self) -> None:
        tasks = self.group["Tasks"]

        def received(alloc: JsonDict) -> None:
            alloc["TaskStates"] = {}
            for task in tasks:
                task_state = new_task_state()
                task_state["Events"].append(
                    task_event("Received", now_ns(), Message="Task received by client")
                )
                alloc["TaskStates"][task["Name"]] = task_state

        self.client.update_alloc(self, received)
        (self.dir / "alloc" / "logs").mkdir(parents=True, exist_ok=True)
        (self.dir / "alloc" / "data").mkdir(exist_ok=True)
        (self.dir / "alloc" / "tmp").mkdir(exist_ok=True)
        for task in tasks:
            for sub in ("local", "secrets", "tmp"):
                (self.dir / task["Name"] / sub).mkdir(parents=True, exist_ok=True)
            self._event(task["Name"], "Task Setup", Message="Building Task Directory")

        def hook(task: JsonDict) -> tuple[str, bool]:
            lifecycle = task["Lifecycle"] or {}
            return lifecycle.get("Hook") or "main", bool(lifecycle.get("Sidecar"))

        prestart = [t for t in tasks if hook(t) == ("prestart", False)]
        sidecars = [t for t in tasks if hook(t)[0] in ("prestart", "poststart") and hook(t)[1]]
        main = [t for t in tasks if hook(t)[0] in ("main", "poststart") and not hook(t)[1]]
        poststop = [t for t in tasks if hook(t)[0] == "poststop"]

        ok = self._run_phase(prestart)
        if ok and not self.stop_requested.is_set():
            sidecar_threads = [self._spawn_sidecar(t, main) for t in sidecars]
            ok = self._run_phase(main)
            for task in sidecars:
                self._kill_task(task, "", main_dead=True)
            for thread in sidecar_threads:
                thread.join()
        else:
            failed_name = next((t["Name"] for t in prestart if self._failed(t["Name"])), "")
            for task in main + sidecars:
                if failed_name:
                    self._dead(
                        task["Name"],
                        False,
                        task_event(
                            "Sibling Task Failed",
                            now_ns(),
                            FailedSibling=failed_name,
                            DisplayMessage=f'Task\'s sibling "{failed_name}" failed',
                        ),
                    )
                else:
                    self._not_started(task["Name"])
        if not self.lost:
            self._run_phase(poststop, poststop=True)
        self.finished = True
        # One last update settles the client status now that every phase is over.
        self.client.update_alloc(self, lambda alloc: None)

    def _failed(self, name: str) -> bool:
        with self.client.state.lock:
            alloc = self.offline or self.client.state.allocs[self.alloc_id]
            states = alloc["TaskStates"] or {}
            return bool(states.get(name, {}).get("Failed"))

    def _spawn_sidecar(self, task: JsonDict, main: list[JsonDict]) -> threading.Thread:
        """Run a sidecar beside the main tasks; if it fails, they are killed for it."""

        def run() -> None:
            name = task["Name"]
            if self._run_task(task) or self.stop_requested.is_set() or not self._failed(name):
                return
            for other in main:
                self._kill_task(other, f'Task\'s sibling "{name}" failed', sibling=name)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def _main_started(self, name: str) -> bool:
        """Wait until every main task has left ``pending``, as a poststart task does; False
        when ``name`` was killed or the allocation stopped meanwhile."""
        main = [t["Name"] for t in self.group["Tasks"] if not (t["Lifecycle"] or {}).get("Hook")]
        while True:
            with self._lock:
                if name in self._killed or self.lost or self.stop_requested.is_set():
                    return False
            with self.client.state.lock:
                alloc = self.offline or self.client.state.allocs[self.alloc_id]
                states = alloc["TaskStates"] or {}
                if all(states.get(m, {}).get("State") != "pending" for m in main):
                    return True
            time.sleep(0.02)

    def _run_phase(self, tasks: list[JsonDict], poststop: bool = False) -> bool:
        """Run ``tasks`` side by side; True when all exited successfully."""
        results: dict[str, bool] = {}

        def run(task: JsonDict) -> None:
            results[task["Name"]] = self._run_task(task, poststop=poststop)
            if not results[task["Name"]] and not poststop and not self.stop_requested.is_set():
                failed = task["Name"]
                for other in tasks:
                    if other["Name"] != failed:
                        self._kill_task(other, f'Task\'s sibling "{failed}" failed', sibling=failed)

        threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in tasks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return all(results.get(t["Name"], False) for t in tasks)

    def _not_started(self, name: str) -> None:
        self._dead(
            name,
            False,
            task_event(
                "Killed",
                now_ns(),
                Message="Task successfully killed",
                DisplayMessage="Task successfully killed",
            ),
        )

    def _kill_task(
        self, task: JsonDict, reason: str, sibling: str = "", main_dead: bool = False
    ) -> None:
        name = task["Name"]
        with self._lock:
            self._killed.add(name)
            proc = self._procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        if main_dead:
            self._event(name, "Main Tasks Dead", DisplayMessage="Main tasks in the group died")
        self._terminate(task, proc, reason, sibling)

    def _terminate(
        self, task: JsonDict, proc: subprocess.Popen[bytes], reason: str, sibling: str = ""
    ) -> None:
        name = task["Name"]
        timeout = int(task["KillTimeout"] or 5 * SECOND)
        # docker stops a container with SIGTERM (ContainerStop); executors interrupt.
        sig_name = task["KillSignal"] or ("SIGTERM" if task["Driver"] == "docker" else "SIGINT")
        kill_signal = getattr(signal, sig_name, signal.SIGINT)
        if sibling:
            self._event(
                name,
                "Sibling Task Failed",
                FailedSibling=sibling,
                DisplayMessage=f'Task\'s sibling "{sibling}" failed',
            )
        self._event(
            name,
            "Killing",
            KillTimeout=timeout,
            KillReason=reason,
            DisplayMessage=f"Sent interrupt. Waiting {_go_duration(timeout)} before force killing",
        )
        _kill_group(proc, kill_signal)
        try:
            proc.wait(timeout / SECOND)
        except subprocess.TimeoutExpired:
            _kill_group(proc, signal.SIGKILL)

    # --- one task -------------------------------------------------------------------------

    def _run_task(self, task: JsonDict, poststop: bool = False) -> bool:
        name = task["Name"]
        if self.lost:
            return False
        if self.stop_requested.is_set() and not poststop:
            self._not_started(name)
            return False
        if (task["Lifecycle"] or {}).get("Hook") == "poststart" and not self._main_started(name):
            self._not_started(name)
            return False
        driver = task["Driver"]
        if driver not in HOST_DRIVERS and driver != "docker":
            message = f"driver {driver} not available in stand-in"
            self._event(name, "Driver Failure", DriverError=message)
            self._not_restarting(name, self._start_error_reason(task, 0, recoverable=False))
            return False
        config = task["Config"] or {}
        if driver == "docker":
            try:
                docker_driver.validate_config(config)
            except ConfigValidationError as exc:
                self._event(name, "Failed Validation", ValidationError=str(exc))
                self._not_restarting(name, self._start_error_reason(task, 0, recoverable=False))
                return False
        elif not config.get("command"):
            message = '1 error occurred:\n\t* Missing required field "command"\n\n'
            self._dead(
                name,
                True,
                task_event(
                    "Failed Validation",
                    now_ns(),
                    ValidationError=message,
                    FailsTask=True,
                    DisplayMessage=message,
                ),
            )
            return False
        try:
            env = self._render_and_env(task)
        except _TaskKilledError:
            self._not_started(name)
            return False
        except (TemplateError, EnvParseError, OSError) as exc:
            message = f'prestart hook "template" failed: {exc}'
            self._dead(
                name,
                True,
                task_event(
                    "Task hook failed",
                    now_ns(),
                    Message=message,
                    DisplayMessage=message,
                    FailsTask=True,
                ),
            )
            return False
        return self._run_process(task, env)

    def _task_dir(self, name: str) -> Path:
        return self.dir / name

    def _base_env(self, task: JsonDict) -> dict[str, str]:
        name = task["Name"]
        dirs = (
            str(self.dir / "alloc"),
            str(self._task_dir(name) / "local"),
            str(self._task_dir(name) / "secrets"),
        )
        if task["Driver"] == "raw_exec":
            env = {k: v for k, v in os.environ.items() if k not in ENV_DENYLIST}
        elif task["Driver"] == "docker":
            # The container sees its image's environment plus the task's, at its own paths.
            env = {}
            dirs = (
                docker_driver.CONTAINER_ALLOC_DIR,
                docker_driver.CONTAINER_LOCAL_DIR,
                docker_driver.CONTAINER_SECRETS_DIR,
            )
        else:
            env = {"PATH": EXEC_PATH}
        res = task["Resources"]
        index = self.alloc_name.rsplit("[", 1)[-1].rstrip("]")
        env.update(
            NOMAD_ALLOC_DIR=dirs[0],
            NOMAD_TASK_DIR=dirs[1],
            NOMAD_SECRETS_DIR=dirs[2],
            NOMAD_ALLOC_ID=self.alloc_id,
            NOMAD_SHORT_ALLOC_ID=self.alloc_id[:8],
            NOMAD_ALLOC_NAME=self.alloc_name,
            NOMAD_ALLOC_INDEX=index,
            NOMAD_GROUP_NAME=self.group["Name"],
            NOMAD_JOB_ID=self.job["ID"],
            NOMAD_JOB_NAME=self.job["Name"],
            NOMAD_JOB_PARENT_ID=self.job["ParentID"],
            NOMAD_NAMESPACE=self.job["Namespace"],
            NOMAD_REGION=self.job["Region"],
            NOMAD_DC=self.node.datacenter,
            NOMAD_TASK_NAME=name,
            NOMAD_CPU_LIMIT=str(res["CPU"]),
            NOMAD_MEMORY_LIMIT=str(res["MemoryMB"]),
        )
        meta = {**(self.job["Meta"] or {}), **(self.group["Meta"] or {}), **(task["Meta"] or {})}
        for key, value in meta.items():
            clean = "".join(c if c.isalnum() or c == "_" else "_" for c in key)
            env[f"NOMAD_META_{clean}"] = value
            env[f"NOMAD_META_{clean.upper()}"] = value
        env.update(port_env(self.ports))
        device_ids = [i for d in self.devices[name]["Devices"] or [] for i in d["DeviceIDs"]]
        if device_ids:
            # What Nomad's nvidia device plugin hands the task.
            env["NVIDIA_VISIBLE_DEVICES"] = ",".join(device_ids)
        return env

    def _render_and_env(self, task: JsonDict) -> dict[str, str]:
        name = task["Name"]
        attrs = self.node.node_attrs()
        env = self._base_env(task)
        base = dict(env)
        for key, value in (task["Env"] or {}).items():
            env[key] = replace_env(str(value), attrs, base)
        template_env: dict[str, str] = {}
        for template in task["Templates"] or []:
            dest_rel = replace_env(template["DestPath"], attrs, env).lstrip("/")
            dest = self._task_dir(name) / dest_rel
            source = template["EmbeddedTmpl"]
            if not source and template["SourcePath"]:
                source = (self._task_dir(name) / template["SourcePath"].lstrip("/")).read_text()
            text = self._render(template, source, env)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
            dest.chmod(int(template["Perms"] or "0644", 8))
            if template["Envvars"]:
                try:
                    template_env.update(parse_env_file(dest.read_bytes()))
                except EnvParseError as exc:
                    raise EnvParseError(
                        exc.line, f"error parsing env template {str(dest)!r}: {exc.reason}"
                    ) from None
        env.update(template_env)
        return env

    def _render(self, template: JsonDict, source: str, env: dict[str, str]) -> str:
        state = self.client.state

        def lookup(path: str, namespace: str) -> dict[str, str] | None:
            if not self.client._variable_allowed(self.job, path, namespace):
                return None
            with state.lock:
                var = state.variables.get((namespace, path))
                return dict(var["Items"]) if var else None

        def services(name: str, namespace: str) -> list[JsonDict]:
            # Rendered once at task start: the stand-in does not re-render on a change.
            with state.lock:
                return [
                    {
                        "ID": r["ID"],
                        "Name": r["ServiceName"],
                        "Namespace": r["Namespace"],
                        "Node": r["NodeID"],
                        "Datacenter": r["Datacenter"],
                        "JobID": r["JobID"],
                        "AllocID": r["AllocID"],
                        "Address": r["Address"],
                        "Port": r["Port"],
                        "Tags": r["Tags"],
                    }
                    for r in sorted(state.services.values(), key=lambda r: r["CreateIndex"])
                    if r["ServiceName"] == name and r["Namespace"] == namespace
                ]

        while True:
            try:
                return render_template(
                    source,
                    env=env,
                    variables=lookup,
                    namespace=self.job["Namespace"],
                    left=template["LeftDelim"],
                    right=template["RightDelim"],
                    err_missing_key=bool(template["ErrMissingKey"]),
                    services=services,
                )
            except MissingVariableError:
                # consul-template blocks until the variable exists; so does the task.
                if self.stop_requested.wait(0.1):
                    raise _TaskKilledError from None

    def _resolve_command(self, command: str, env: dict[str, str], task_dir: Path) -> str:
        if "/" in command:
            path = Path(command)
            return str(path if path.is_absolute() else task_dir / path)
        for candidate in (task_dir / "local" / command, task_dir / command):
            if candidate.is_file():
                return str(candidate)
        return shutil.which(command, path=env.get("PATH")) or command

    def _run_process(self, task: JsonDict, env: dict[str, str]) -> bool:
        name = task["Name"]
        policy = task["RestartPolicy"]
        batch = self.job["Type"] in ("batch", "sysbatch")
        restarts = 0
        logs = self.dir / "alloc" / "logs"
        while True:
            with (
                (logs / f"{name}.stdout.0").open("ab") as out,
                (logs / f"{name}.stderr.0").open("ab") as err,
            ):
                try:
                    proc = self._launch(task, env, out, err)
                except _TaskKilledError:
                    self._not_started(name)
                    return False
                except DriverStartError as exc:
                    # runDriver emits the driver's error; the restart tracker decides.
                    self._event(name, "Driver Failure", DriverError=exc.message)
                    reason = self._start_error_reason(task, restarts, exc.recoverable)
                    if reason is not None:
                        self._not_restarting(name, reason)
                        return False
                    restarts += 1
                    if not self._restart(task, restarts):
                        return False
                    continue
            self._task_update(
                name,
                task_event("Started", now_ns(), DisplayMessage="Task started by client"),
                State="running",
                StartedAt=rfc3339(now_ns()),
            )
            self._wait(task, proc)
            if self.lost:
                return False
            code = proc.returncode
            sig = -code if code < 0 else 0
            exit_code = 128 + sig if sig else code
            display = f"Exit Code: {exit_code}" + (f", Signal: {sig}" if sig else "")
            details = {"oom_killed": "false"}
            exit_message = proc.exit_message() if isinstance(proc, DockerContainer) else ""
            if exit_message:
                display += f", Exit Message: {go_quote(exit_message)}"
                details["exit_message"] = exit_message
            self._event(
                name,
                "Terminated",
                ExitCode=exit_code,
                Signal=sig,
                Message=exit_message,
                DisplayMessage=display,
                Details=details,
            )
            with self._lock:
                killed = name in self._killed
            if killed or (self.stop_requested.is_set() and not self._is_poststop(task)):
                self._dead(
                    name,
                    False,
                    task_event(
                        "Killed",
                        now_ns(),
                        Message="Task successfully killed",
                        DisplayMessage="Task successfully killed",
                    ),
                )
                return False
            if exit_code == 0 and batch:
                self._dead(name, False)
                return True
            attempts = int(policy.get("Attempts", 0))
            if restarts >= attempts:
                reason = (
                    "Policy allows no restarts"
                    if attempts == 0
                    else f"Exceeded allowed attempts {attempts} in interval "
                    f'{_go_duration(int(policy.get("Interval", 0)))} and mode is "fail"'
                )
                self._dead(
                    name,
                    exit_code != 0 or not batch,
                    task_event(
                        "Not Restarting",
                        now_ns(),
                        RestartReason=reason,
                        FailsTask=True,
                        DisplayMessage=reason,
                    ),
                )
                return exit_code == 0
            restarts += 1
            if not self._restart(task, restarts):
                return False

    def _launch(
        self, task: JsonDict, env: dict[str, str], out: IO[bytes], err: IO[bytes]
    ) -> subprocess.Popen[bytes] | DockerContainer:
        """Start the task by its driver: a process group, or a container (``docker``).
        Raises ``DriverStartError`` as the driver's ``StartTask`` fails."""
        name = task["Name"]
        if task["Driver"] == "docker":
            self._refuse_unpullable(task)
            container = docker_driver.start(self._docker_task(task, env))
            container.follow_logs(out, err)
            with self._lock:
                stopped = self.stop_requested.is_set() and not self._is_poststop(task)
                if not (self.lost or stopped or name in self._killed):
                    self._procs[name] = container
                    return container
            container.send_signal(signal.SIGKILL)
            container.wait()
            raise _TaskKilledError
        task_dir = self._task_dir(name)
        attrs = self.node.node_attrs()
        config = task["Config"]
        argv = [replace_env(str(config["command"]), attrs, env)]
        argv += [replace_env(str(arg), attrs, env) for arg in config.get("args") or []]
        argv[0] = self._resolve_command(argv[0], env, task_dir)
        try:
            with self._lock:
                if self.lost or (self.stop_requested.is_set() and not self._is_poststop(task)):
                    raise _TaskKilledError
                if name in self._killed:
                    raise _TaskKilledError
                proc = subprocess.Popen(
                    argv,
                    cwd=task_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
                self._procs[name] = proc
                return proc
        except OSError as exc:
            raise DriverStartError(f"failed to launch command with executor: {exc}") from None

    def _docker_task(self, task: JsonDict, env: dict[str, str]) -> docker_driver.DockerTask:
        """What the docker driver needs: the config interpolated as Nomad's HCL does."""
        name = task["Name"]
        attrs = self.node.node_attrs()
        res = task["Resources"]
        devices = self.devices[name]["Devices"] or []

        def message(text: str, details: dict[str, str]) -> None:
            self._event(name, "Driver", DriverMessage=text, DisplayMessage=text, Details=details)

        return docker_driver.DockerTask(
            alloc_id=self.alloc_id,
            name=name,
            config=_interpolate(task["Config"] or {}, attrs, env),
            env=env,
            user=task["User"],
            alloc_root=self.dir,
            memory_mb=int(res["MemoryMB"]),
            memory_max_mb=int(res["MemoryMaxMB"] or 0),
            cpu_mhz=int(res["CPU"]),
            gpu_ids=tuple(i for d in devices if d["Type"] == "gpu" for i in d["DeviceIDs"]),
            on_message=message,
        )

    def _refuse_unpullable(self, task: JsonDict) -> None:
        """A node that cannot pull the image (``refuse_image``) fails as the docker driver
        does: the ``Driver`` event "Downloading image", then coordinator.go's
        ``recoverablePullError`` "Failed to pull `<image>`: <daemon's error>", which the
        caller reports as a ``Driver Failure`` and hands to the restart policy."""
        image = str(task["Config"].get("image", ""))
        error = self.client.unpullable_images.get(image)
        if error is None:
            return
        text = "Downloading image"
        details = {"image": image}
        name = task["Name"]
        self._event(name, "Driver", DriverMessage=text, DisplayMessage=text, Details=details)
        raise DriverStartError(f"Failed to pull `{image}`: {error}", recoverable=True)

    @staticmethod
    def _start_error_reason(task: JsonDict, restarts: int, recoverable: bool) -> str | None:
        """Why a task that failed to start is not restarted (``restarts.go`` GetState);
        None: the policy restarts it."""
        policy = task["RestartPolicy"]
        attempts = int(policy.get("Attempts", 0))
        if attempts == 0:
            return "Policy allows no restarts"
        if not recoverable:
            return "Error was unrecoverable"
        if restarts >= attempts:
            interval = _go_duration(int(policy.get("Interval", 0)))
            return f'Exceeded allowed attempts {attempts} in interval {interval} and mode is "fail"'
        return None

    def _not_restarting(self, name: str, reason: str | None) -> None:
        reason = reason or "Error was unrecoverable"
        self._dead(
            name,
            True,
            task_event(
                "Not Restarting",
                now_ns(),
                RestartReason=reason,
                FailsTask=True,
                DisplayMessage=reason,
            ),
        )

    def _restart(self, task: JsonDict, restarts: int) -> bool:
        """Report the restart and wait its delay; False when the task was stopped meanwhile."""
        name = task["Name"]
        delay = int(task["RestartPolicy"].get("Delay", 0))
        self._task_update(
            name,
            task_event(
                "Restarting",
                now_ns(),
                RestartReason="Restart within policy",
                StartDelay=delay,
                DisplayMessage=f"Task restarting in {_go_duration(delay)}",
            ),
            Restarts=restarts,
            LastRestart=rfc3339(now_ns()),
        )
        if self.stop_requested.wait(delay / SECOND) and not self._is_poststop(task):
            self._not_started(name)
            return False
        return True

    @staticmethod
    def _is_poststop(task: JsonDict) -> bool:
        return bool((task["Lifecycle"] or {}).get("Hook") == "poststop")

    @classmethod
    def _stops_last(cls, task: JsonDict) -> bool:
        """Poststop tasks run on after a stop; sidecars are killed after the main tasks."""
        return cls._is_poststop(task) or bool((task["Lifecycle"] or {}).get("Sidecar"))

    def _wait(self, task: JsonDict, proc: subprocess.Popen[bytes] | DockerContainer) -> None:
        name = task["Name"]
        next_collection = time.monotonic()
        try:
            while proc.poll() is None:
                if self.lost:
                    _kill_group(proc, signal.SIGKILL)
                    proc.wait()
                    return
                # On a stop the sidecars go last, once the main tasks are dead (killTasks).
                if self.stop_requested.is_set() and not self._stops_last(task):
                    with self._lock:
                        self._killed.add(name)
                    self._terminate(task, proc, "", "")
                    proc.wait()
                    return
                if time.monotonic() >= next_collection:
                    self._collect(name, proc)
                    next_collection = time.monotonic() + self.client.stats_interval
                time.sleep(0.02)
        finally:
            self._forget_usage(name)


def _swap_bytes(pid: int) -> int:
    """``VmSwap`` of ``/proc/<pid>/status`` in bytes; 0 where it cannot be read."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmSwap:"):
                return int(line.split()[1]) * 1024
    return 0


def _kill_group(proc: subprocess.Popen[bytes] | DockerContainer, sig: int) -> None:
    if isinstance(proc, DockerContainer):
        proc.send_signal(sig)  # docker kill --signal, as the docker driver signals
        return
    # The group may be gone already: that is the outcome we wanted.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _interpolate(value: Any, attrs: dict[str, str], env: dict[str, str]) -> Any:
    """Every string in a driver config with ``${...}`` replaced, as Nomad's HCL does."""
    if isinstance(value, str):
        return replace_env(value, attrs, env)
    if isinstance(value, list):
        return [_interpolate(item, attrs, env) for item in value]
    if isinstance(value, dict):
        return {key: _interpolate(item, attrs, env) for key, item in value.items()}
    return value


def _go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()`` for whole seconds and above (e.g. ``24h0m0s``)."""
    seconds = ns / SECOND
    if seconds < 1:
        return f"{int(ns / 1_000_000)}ms" if ns else "0s"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    frac = seconds - int(seconds)
    return f"{secs}s" if not frac else f"{seconds:g}s"
