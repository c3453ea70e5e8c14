"""Scale-out Redis: Sentinel, Cluster, TLS and least-privilege ACLs, all real (issue 6)."""
