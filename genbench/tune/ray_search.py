"""Ray Tune's view of a :class:`genbench.tune.tuner.TrialSource` (imported only with ``--executor ray``).

Ray Tune pickles its searcher with the experiment state, so the searcher holds only a key
into :data:`LIVE`, the driver's table of live objects (a console, an Optuna study, the
trials file); the class lives at module level so that it pickles by reference.
"""

from __future__ import annotations

import json
from typing import Any

from ray.tune.search import Searcher

LIVE: dict[str, tuple[Any, Any, Any, Any]] = {}  # key -> (task, source, trials log, on_done)


class TrialSourceSearcher(Searcher):
    """Suggests the source's trials; records each one in the trials file as Tune reports it done."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key
        self.suggested: dict[str, dict[str, Any]] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return True  # the space is the source's; Tune's param_space stays empty

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        got = LIVE[self.key][1].suggest(trial_id)
        if got is None:
            return Searcher.FINISHED
        self.suggested[trial_id] = got
        return got

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        from genbench.tune.trial import failed_record

        got = self.suggested.pop(trial_id, None)
        if got is None:
            return
        task, source, log, on_done = LIVE[self.key]
        text = (result or {}).get("record_json")
        if text is not None:
            rec = json.loads(text)
        elif error:  # the worker died or Ray failed the trial: still a spent trial
            rec = failed_record(task, got["trial"], got["values"], "the Ray trial ended without a record")
        else:  # stopped before it ran (Ctrl-C): not a trial; --resume runs it
            return
        log.append(rec)
        source.complete(trial_id, rec)
        on_done(task, rec)
