"""Crane's REST API: FastAPI app, persistence, auth and the backends behind one interface."""
