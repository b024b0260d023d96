"""What Winslow's Nomad token may do, and which capability each call it makes needs.

``deploy/nomad/winslow-policy.hcl`` is the least Winslow needs: in its namespace it
registers, reads, lists and stops its jobs (``submit-job``, ``read-job``, ``list-jobs``),
reads a run's log file (``read-fs``) and a task's output (``read-logs``); it writes the S3
keys to the Nomad Variable its tasks read; it lists nodes (``node { policy = "read" }``).
It never dispatches, execs or restarts allocations. Names are hashicorp/nomad
acl/policy.go's (``NamespaceCapability*``, ``VariablesCapabilityWrite``,
``PolicyRead``); which endpoint checks which is in nomad/*_endpoint.go (``AllowNsOp``).

When Nomad answers 401 or 403, ``permission_error`` says which capability the refused
call needed and everything the policy grants, so a person can compare it with the token's.
"""

from __future__ import annotations

from dataclasses import dataclass

from winslow.errors import BackendError

POLICY_FILE = "deploy/nomad/winslow-policy.hcl"
"""Where the policy ships in a checkout (the README shows it too)."""

NAMESPACE_CAPABILITIES = ("submit-job", "read-job", "list-jobs", "read-logs", "read-fs")
"""What the policy grants in Winslow's namespace (acl/policy.go ``NamespaceCapability*``)."""

VARIABLE_CAPABILITIES = ("write",)
"""What the policy grants on the credentials Variable (``VariablesCapabilityWrite``)."""

NODE_POLICY = "read"
"""The policy's ``node`` rule (``GET /v1/nodes``, ``/v1/node/:id``)."""


@dataclass(frozen=True)
class Capability:
    """One thing a call needs: a namespace capability, the node rule, or a Variable's."""

    scope: str
    """``namespace``, ``node`` or ``variables``."""
    name: str

    def describe(self, namespace: str, variable_path: str) -> str:
        if self.scope == "node":
            return f'node policy "{self.name}"'
        if self.scope == "variables":
            return f"variables {self.name} at '{variable_path}' in namespace '{namespace}'"
        return f"{self.name} in namespace '{namespace}'"


class NomadPermissionError(BackendError):
    """Nomad refused a call for want of a capability; ``capability`` names it."""

    code = "backend_forbidden"

    def __init__(self, message: str, capability: Capability, status_code: int) -> None:
        super().__init__(message)
        self.capability = capability
        self.status_code = status_code


def needed_capability(method: str, path: str) -> Capability:
    """The capability Nomad checks for ``method path`` (a ``/v1/...`` path)."""
    if path.startswith("/v1/client/fs/logs/"):
        return Capability("namespace", "read-logs")
    if path.startswith("/v1/client/fs/"):
        return Capability("namespace", "read-fs")
    if path.startswith("/v1/var/"):
        return Capability("variables", "write" if method in ("PUT", "DELETE") else "read")
    if path.startswith(("/v1/nodes", "/v1/node/")):
        return Capability("node", NODE_POLICY)
    if path == "/v1/jobs" and method == "GET":
        return Capability("namespace", "list-jobs")
    if path.startswith(("/v1/jobs", "/v1/job/")) and method in ("POST", "PUT", "DELETE"):
        return Capability("namespace", "submit-job")
    return Capability("namespace", "read-job")


def granted(namespace: str, variable_path: str) -> str:
    """Everything ``winslow-policy.hcl`` grants, in one line."""
    return (
        f"{', '.join(NAMESPACE_CAPABILITIES)} in namespace '{namespace}'; "
        f"variables {', '.join(VARIABLE_CAPABILITIES)} at '{variable_path}'; "
        f'node policy "{NODE_POLICY}"'
    )


def permission_error(
    address: str,
    method: str,
    path: str,
    status: int,
    body: str,
    *,
    namespace: str,
    variable_path: str,
) -> NomadPermissionError:
    """The error for a 401 or 403 from Nomad: what the call needed, what the policy grants."""
    needed = needed_capability(method, path)
    message = (
        f"Nomad at {address} refused {method} {path}: the token (NOMAD_TOKEN) lacks "
        f"{needed.describe(namespace, variable_path)} ({body or status}). Winslow's policy "
        f"({POLICY_FILE}) grants {granted(namespace, variable_path)}; apply it with `nomad "
        "acl policy apply winslow winslow-policy.hcl` and give Winslow a token of that policy."
    )
    return NomadPermissionError(message, needed, status)
