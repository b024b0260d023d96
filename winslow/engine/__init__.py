"""The engine: the only writer of run state; it moves projects along."""
