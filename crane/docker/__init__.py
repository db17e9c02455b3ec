"""Plain-Docker mode: Docker hosts as nodes, SQL as the truth, a reconciler converging them."""
