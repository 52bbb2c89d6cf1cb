"""File access: atomic writes and locks (``atomic``), safe image and array reading (``images``)."""
