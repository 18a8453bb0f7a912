"""Benchmarks behind `azero bench`: each module returns a list of `Measurement`s."""
