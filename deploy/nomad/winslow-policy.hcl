# The ACL policy of Winslow's own Nomad token: the least it needs, in its namespace only.
#
#   nomad namespace apply -description "Winslow's stage jobs" winslow
#   nomad acl policy apply -description "Winslow server" winslow deploy/nomad/winslow-policy.hcl
#   nomad acl token create -name winslow -policy winslow     # its Secret ID is NOMAD_TOKEN
#
# Capability names are Nomad's (acl/policy.go). Winslow registers, reads, lists and stops
# its jobs, reads a run's log file (read-fs) and a task's output (read-logs), writes the S3
# keys to the Variable its tasks read, and lists the nodes. It never dispatches, execs into
# or restarts an allocation, so alloc-lifecycle, alloc-exec and dispatch-job are left out.
# Rename "winslow" here if WINSLOW_NOMAD_NAMESPACE names another namespace.
namespace "winslow" {
  capabilities = ["submit-job", "read-job", "list-jobs", "read-logs", "read-fs"]

  # The S3 keys, written at start (WINSLOW_NOMAD_PUBLISH_CREDENTIALS); every job of the
  # namespace reads nomad/jobs without a policy, which is why the namespace is Winslow's.
  variables {
    path "nomad/jobs" {
      capabilities = ["write"]
    }
  }
}

# `winslow nodes` and the console's node page: GET /v1/nodes and /v1/node/:id.
node {
  policy = "read"
}
