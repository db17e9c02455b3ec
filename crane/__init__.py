"""Crane: an elastic GPU cluster resource manager."""

__version__ = "0.1.0"
