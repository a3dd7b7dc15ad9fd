"""OpenCX benchmarks: `make bench` runs them all and prints ratios to same-run baselines."""
