"""The one decision pass shared by both backends (decide -> plan, no I/O)."""
