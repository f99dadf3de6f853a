"""The effects of an invocation's verdicts: one module per kind, applied once each in the order apply.py keeps."""
