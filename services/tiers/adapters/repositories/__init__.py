"""The tiers repositories, split by who uses them: the consumer's batch (`consumer`), the HTTP
use cases (`api`), the jobs (`jobs`), the program in force (`programs`) and the replay
(`replay`); the SQL more than one of them runs is in `common`."""
