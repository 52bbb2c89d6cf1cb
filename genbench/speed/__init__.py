"""``genbench speed``: fixed workloads (``worker``) measured on one or two source trees (``trees``),
interleaved and compared (``bench``)."""
