"""The Nomad backend: every stage run becomes a Nomad batch job placed by Nomad."""
