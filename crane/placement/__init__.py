"""The placement engine: pure, deterministic, synchronous. Imports nothing of Kubernetes,
Docker, FastAPI or SQL."""
