"""Backends run stages: ``local`` on this machine, ``nomad`` on a cluster."""
