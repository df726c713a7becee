"""Fedelta's own library: what every service really shares (events, Kafka and DB plumbing)."""
