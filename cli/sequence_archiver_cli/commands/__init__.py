"""One thin module per command: its options, then a run function over the testable helpers."""
