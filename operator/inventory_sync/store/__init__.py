"""PostgreSQL: migrations, staged merges and run records (store layer; knows nothing of upstreams)."""
