"""The engagement repositories, split by who uses them: the consumer's batch (`consumer`) and
the HTTP use cases (`api`)."""
