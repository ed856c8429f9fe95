"""Exceptions of the AsyncAPY API."""


class StopPropagation(Exception):
    """Raised (by ``packet.stop_propagation()``) to stop the packet reaching later groups."""
