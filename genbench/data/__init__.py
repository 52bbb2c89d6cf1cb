"""Datasets (``datasets``: download, checksums, data-root resolution) and the splits drawn from them."""
