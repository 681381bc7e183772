"""What tests and benchmarks build, never the production servers: random-weight checkpoints."""
