"""A stateful stand-in of the Nomad HTTP API for tests: one server and client agent.

``NomadStandin`` serves Nomad's job, allocation, evaluation, node, variable, event
stream, log and allocation statistics endpoints on 127.0.0.1 from an in-memory state
with a raft-like index, schedules task groups onto simulated nodes (CPU, memory, NVIDIA
GPUs, drivers, typed constraints, node pools) and runs ``raw_exec``/``exec`` tasks as
real local processes and ``docker`` tasks through the local docker daemon, measuring
what they use. Service jobs get ports, host volumes, Nomad service registrations with
real ``http``/``tcp`` checks, deployments judged by allocation health, and
``/v1/job/:id/plan`` diffs (``services``, ``plan``). It can serve HTTPS with client
certificates, lose a node the way Nomad loses it and reconnect it, and collect dead
jobs as `nomad system gc` does (``gc``). Shapes, status codes
and error texts follow Nomad's documentation and source; see each module's docstring for
what it mirrors and where it simplifies.
"""

from __future__ import annotations

from .standin import NomadStandin, StandinTls

__all__ = ["NomadStandin", "StandinTls"]
