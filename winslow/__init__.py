"""Winslow: long, GPU-heavy computer-vision pipelines with a person in the loop."""

__version__ = "0.1.0"
