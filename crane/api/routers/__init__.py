"""One router per noun, mounted under ``/v1`` (health and metrics at the root)."""
