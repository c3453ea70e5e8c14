"""Fault injection against a real redis-server (issue 6)."""
