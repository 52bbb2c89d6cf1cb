"""``genbench tune``: search spaces, trials on Ray Tune, tuned suite files."""
