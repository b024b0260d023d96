# Vault policy of Winslow's stage jobs (namespace "winslow"): the S3 keys their
# stage-in/stage-out tasks render from a Vault template (WINSLOW_NOMAD_CREDENTIALS=vault,
# WINSLOW_NOMAD_CREDENTIALS_PATH=secret/data/winslow/s3). Not the database, not Nomad.
#   vault policy write winslow-stage deploy/vault/winslow-stage-policy.hcl
path "secret/data/winslow/s3" {
  capabilities = ["read"]
}
