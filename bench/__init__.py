"""Benchmarks: ``make bench`` runs them all; docs/benchmarks.md records a run."""
