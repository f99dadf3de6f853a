"""Archive Reply sequences: request parsing, the Reply API client, the archiving core and result publishing."""
