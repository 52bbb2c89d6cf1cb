"""Checking numbers against numbers: the metric gate against a baseline (``check``), reruns of
recorded runs (``reproduce``) and the verdict words they share (``verdict``)."""
