# Vault policy of the Winslow server: read its own secrets (KV v2 at secret/, path
# winslow/, WINSLOW_VAULT_MOUNT and WINSLOW_VAULT_PATH), nothing else.
#   vault policy write winslow-server deploy/vault/winslow-server-policy.hcl
path "secret/data/winslow/*" {
  capabilities = ["read"]
}

path "secret/metadata/winslow/*" {
  capabilities = ["read", "list"]
}
