"""Benchmarks: figures printed side by side in one run, never wall-clock assertions in tests."""
