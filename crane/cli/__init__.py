"""The ``crane`` command line."""
