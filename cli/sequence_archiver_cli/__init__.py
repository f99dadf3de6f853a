"""The `sequence-archiver` command line: enqueue, select, archive and report."""
