"""One benchmark run, in the order it happens.

``plan`` turns a suite into run specs and hands them to an executor; ``executors`` runs
them here or on Ray behind one interface; ``task`` is the unit of work (a spec in, a run
record out); ``train`` is the training loop under a ``budget``; ``lock`` guards a run
folder; ``process`` holds the process helpers (seeding, load average, memory) that
training, evaluation and speed share.
"""
