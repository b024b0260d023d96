# Added by `make nomad-dev` where nvidia-smi works: the NVIDIA device plugin makes each
# GPU a schedulable `nvidia/gpu` device (needs the nomad-device-nvidia plugin binary in
# the agent's plugin_dir).
plugin "nomad-device-nvidia" {
  config {
    enabled            = true
    fingerprint_period = "1m"
  }
}
