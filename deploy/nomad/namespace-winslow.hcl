# The stage jobs Winslow submits (WINSLOW_NOMAD_NAMESPACE).
#   nomad namespace apply deploy/nomad/namespace-winslow.hcl
name        = "winslow"
description = "Winslow's stage jobs"
