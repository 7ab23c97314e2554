"""brillo benchmarks (not part of the test suite; run with scripts/bench)."""
