"""Fault injection against a real redis-server (docs/redis.md, "What happens when Redis misbehaves")."""
