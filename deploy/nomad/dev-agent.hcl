# A single-machine Nomad dev agent for trying Winslow's Nomad backend (`make nomad-dev`).
# raw_exec lets command-only stages and the stage-in/stage-out tools run on the host.
plugin "raw_exec" {
  config {
    enabled = true
  }
}

client {
  enabled = true
}
