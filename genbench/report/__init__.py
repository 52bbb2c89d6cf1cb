"""From run records to leaderboards: aggregate over seeds, significance, folders compared, outputs."""
