"""Helpers the Makefile runs: small, dependency-free apart from what their virtualenv already has."""
