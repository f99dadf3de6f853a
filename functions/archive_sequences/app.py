"""Lambda entry point: the handler of this instance, built once at the cold start from its environment.

The cyclic garbage collector is off while the modules load and the handler is built: nearly everything the cold
start allocates lives as long as the instance, and collecting while that heap grows only traverses it again and
again (about a tenth of the cold start, issue 21). What survives is then frozen (`gc.freeze`: never traversed
again, by the first invocation's build of the clients nor by any later collection); the few cycles that were
already garbage (about 0.3 MB) stay allocated with it.
"""

from __future__ import annotations

import gc
import os

gc.disable()
try:
    from sequence_archiver.handler import create_handler

    lambda_handler = create_handler(os.environ)
finally:
    gc.freeze()
    gc.enable()
