"""``winslow deploy``: Winslow, its database, storage and registry as Nomad jobs.

``jobs`` loads the JSON job files of ``deploy/nomad/jobs/`` (the ``{"Job": {...}}`` form
``nomad job run -json`` takes too), picks the storage variant, orders them by what each
needs and fills in the cluster's values; ``health`` turns Nomad's answers about a job into
one verdict with a reason; ``diff`` words a plan's diff; ``runner`` does the talking to
Nomad through ``winslow.backends.nomad``. Everything but ``runner`` is pure.
"""
