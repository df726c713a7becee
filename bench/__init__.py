"""Benchmarks against a running `make up` stack; not part of `make test`. See bench/README.md."""
