"""Lambda entry point: the handler of this instance, built once at the cold start from its environment."""

from __future__ import annotations

import os

from sequence_archiver.handler import create_handler

lambda_handler = create_handler(os.environ)
