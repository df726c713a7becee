"""`fedelta`: the operator's command line (simulate traffic, inspect customers, partners,
topics, migrations, dead letters and jobs). Entry point: `fedelta_cli.main:app`."""
