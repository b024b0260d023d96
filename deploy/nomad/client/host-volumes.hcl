# Nomad client: the host volumes the deploy jobs claim. Put each block only on the
# node(s) that should hold that data; the scheduler places a job only where its volume
# is ("missing compatible host volumes" otherwise). Create the folders first:
#   sudo mkdir -p /srv/winslow/{server,postgres,minio,registry,seaweedfs}
# PostgreSQL runs as uid 999 in its image: sudo chown 999:999 /srv/winslow/postgres
# Winslow runs as its image's user winslow:
#   sudo chown $(docker run --rm registry.lab:5000/winslow:0.1.0 id -u) /srv/winslow/server
client {
  # The server's data folder (WINSLOW_DATA_DIR=/data: admin token, pipelines folder).
  host_volume "winslow-server" {
    path      = "/srv/winslow/server"
    read_only = false
  }
  host_volume "winslow-postgres" {
    path      = "/srv/winslow/postgres"
    read_only = false
  }
  host_volume "winslow-minio" {
    path      = "/srv/winslow/minio"
    read_only = false
  }
  host_volume "winslow-registry" {
    path      = "/srv/winslow/registry"
    read_only = false
  }
  host_volume "winslow-seaweedfs" {
    path      = "/srv/winslow/seaweedfs"
    read_only = false
  }
}

# For the distributed MinIO job (4 nodes, one drive each): on each of the four nodes,
# besides host_volume "winslow-minio", mark the node and give it a name MinIO's peers
# resolve as minio1.lab ... minio4.lab (MINIO_VOLUMES in the job):
#   client { meta { winslow_minio = "true" } }
