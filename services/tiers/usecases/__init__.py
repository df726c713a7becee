"""The tiers use cases: one module per resource of the API (`customers`, `tiers`), and the
replay after a rule change (`replay`), which the command line runs."""
