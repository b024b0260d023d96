"""What runs on a node next to a stage: the runner, stage-in, stage-exec, stage-out.

The local backend starts ``runner`` once per job; Nomad runs ``winslow stage-in``,
``stage-exec`` and ``stage-out`` (``cli``) as tasks of the stage's job. Both use the same
tools (``stagetools``), the same log (``joblog``) and the same progress file
(``progress``), so a stage behaves alike wherever it runs. ``jobfiles`` is the on-disk
job directory the local backend and its runner share; ``container`` builds the
``docker run`` line of a stage that names an image.
"""
