"""The HTTP layer: typed I/O, input decoding, errors, limits and the request logic the service wires."""
