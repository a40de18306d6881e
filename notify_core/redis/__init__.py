"""Redis as the stores use it: the client factory (single, Cluster, Sentinel),
key names, hashes, chunked scripts, batched writes, replica confirmation and followed
snapshots. `import redis` inside this package is still redis-py (absolute imports)."""
