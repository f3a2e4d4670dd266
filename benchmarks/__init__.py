"""make bench: the stack measured against the raw gRPC floor (see benchmarks/README.md)."""
