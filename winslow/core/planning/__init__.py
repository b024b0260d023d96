"""The planner's parts, lowest first: ``runs`` (where the runs leave a project),
``decisions`` (what the planner can answer) and ``rules`` (the named rules that answer).

Import from ``winslow.core.planner``: its ``decide`` is the entry point and it names every
public value; these modules are split only so each stays small.
"""
