# Nomad agents (servers and clients): Vault through workload identity (Nomad 1.7+).
# A task with a `vault` block gets a Vault token by logging in to the JWT auth method
# at `jwt-nomad` with its signed workload identity; no Vault token lives in Nomad.
# Only needed when the server reads its secrets from Vault (winslow deploy --vault-addr).
vault {
  enabled               = true
  address               = "https://vault.lab:8200"
  jwt_auth_backend_path = "jwt-nomad"

  # On servers: the identity every task with a vault block gets (audience vault.io).
  default_identity {
    aud = ["vault.io"]
    ttl = "1h"
  }
}
