"""Fakes of the ports the code under test uses, defined once for every unit test: the shared
library's (messaging.py) and each service's (<service>.py)."""
