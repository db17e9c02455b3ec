"""Kubernetes glue: Node -> inventory, pod and service builders, CR (de)serialisation,
a thin client, and the kwok fleet generator for tests.

Imports the placement contract and the model; knows nothing of kopf.
"""
