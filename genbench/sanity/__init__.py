"""``genbench sanity``: which metric sees which failure, measured on degraded real images.

:mod:`.families` builds the sets and declares what every metric should do, :mod:`.degrade` holds the
image transformations, :mod:`.judge` the pass/fail criteria, :mod:`.run` scores and judges, and
:mod:`.report` writes the matrix (Markdown, PNG heatmap, JSON). The docs page is ``docs/sanity.md``.
"""
