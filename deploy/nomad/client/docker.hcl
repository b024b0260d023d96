# Nomad client: the docker driver as Winslow's jobs need it.
#   - volumes.enabled: the deploy jobs mount host volumes and the stage jobs the node's
#     input cache; without it the driver refuses any `volumes` entry.
#   - auth.config: a docker config.json holding the credentials of the self-hosted
#     registry (the htpasswd user of the registry job), so nodes can pull Winslow's images:
#       docker login registry.lab:5000   (as root on each node, then copy the file)
#   - allow_runtimes: "nvidia" for GPU stages (needs the NVIDIA container toolkit).
plugin "docker" {
  config {
    volumes {
      enabled = true
    }
    auth {
      config = "/etc/nomad.d/docker-auth.json"
    }
    allow_runtimes = ["runc", "nvidia"]
    gc {
      image       = true
      image_delay = "24h"
    }
  }
}
