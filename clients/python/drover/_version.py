"""The client's version.

It is the C library's version (``project(drover VERSION ...)`` in the top
CMakeLists.txt) and must move with it: the Python client ships with the
broker, workers and libdrover of the same release.
"""

__version__ = "0.1.0"

#: The wire protocol this client speaks (docs/PROTOCOL.md).
PROTOCOL_VERSION = (1, 8)
