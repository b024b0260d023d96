# Winslow's own jobs (server, PostgreSQL, storage, registry): `winslow deploy` puts them here.
# Apart from the stage jobs' namespace "winslow" because every job of a namespace can read
# its nomad/jobs Variable without a policy: stages must never see the database password.
#   nomad namespace apply deploy/nomad/namespace-winslow-system.hcl
name        = "winslow-system"
description = "Winslow server, database, storage and registry"
