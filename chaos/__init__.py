"""The chaos suite: hard kills under load, then proof that nothing was lost or doubled.

`python -m chaos --help`; `make chaos` runs it with at least 10,000 calls. See docs/chaos.md.
"""
