"""Scale-out Redis: Sentinel, Cluster, TLS and least-privilege ACLs, all real (docs/redis.md)."""
