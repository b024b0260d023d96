# The ACL policy of the operator token `winslow deploy` (make deploy) runs with.
#
#   nomad acl policy apply -description "winslow deploy" winslow-deploy deploy/nomad/deploy-policy.hcl
#   nomad acl token create -name winslow-deploy -policy winslow-deploy   # NOMAD_TOKEN for make deploy
#
# It registers, plans, stops and reads the deploy jobs, their deployments, services and
# checks (read-job), and reads the names of the Variables their templates need (never
# writes them: an operator puts the secrets in with `nomad var put`).
namespace "winslow-system" {
  capabilities = ["submit-job", "read-job", "list-jobs", "read-logs"]

  variables {
    path "nomad/jobs*" {
      capabilities = ["read"]
    }
  }
}
