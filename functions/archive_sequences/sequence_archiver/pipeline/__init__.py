"""The pipeline: an event read into deliveries, their work done, each one's fate decided, the effects applied.

deliveries (read) → work (claim, parse, list, archive) → verdicts (decide, pure) → effects (apply, once) →
responses (answer the trigger); service runs them in that order. Nothing here imports back up into the
wiring or the handler.
"""
