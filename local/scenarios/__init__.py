"""Runnable scenarios on the stand-ins: the demo (`make run`), the local stack (`make stack`) and the soaks."""
