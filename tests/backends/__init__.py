"""Tests of the backends that run stages: ``local`` with real processes and real storage."""
