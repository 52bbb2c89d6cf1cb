"""The import path ``genbench.run.budget`` of earlier releases: the budget now lives in :mod:`genbench.budget`,
at the bottom of genbench's imports, where the suite, the run and the tuner all read it."""

from genbench.budget import Budget, BudgetTracker, parse_budget_overrides

__all__ = ["Budget", "BudgetTracker", "parse_budget_overrides"]
