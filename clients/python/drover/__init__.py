"""Drover's Python client (wire protocol 1.8).

    import drover
    with drover.Client() as c:          # $DROVER_BROKER or tcp://127.0.0.1:7470
        probs = c.infer("iris", X)      # rows x classes, float32
        job = c.submit_echo(b"hi")      # a future-like Job
        print(bytes(job.result().payload))

:class:`Client` blocks (each call takes a timeout); :mod:`drover.aio` has
the same surface for asyncio. Errors are :mod:`drover.errors` exceptions
named after the wire errors. A client is not thread-safe: one per thread.
:mod:`drover.export` (model export) is a separate submodule, imported on
demand.
"""

from . import errors
from ._proto import Prediction, Progress, Result, load_key, to_csv
from ._version import PROTOCOL_VERSION, __version__
from .client import Client, Job, Stream
from .errors import DroverError, Timeout

__all__ = ["Client", "Job", "Stream", "Result", "Prediction", "Progress",
           "DroverError", "Timeout", "errors", "load_key", "to_csv",
           "__version__", "PROTOCOL_VERSION"]
