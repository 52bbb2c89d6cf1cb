"""The import path ``genbench.tune.search_space`` of earlier releases, which model files use for their
``search_space``: the distributions now live in :mod:`genbench.search_space`, at the bottom of
genbench's imports, where the registry and the suite files read them without importing the tuner."""

from genbench.search_space import (
    Choice,
    Distribution,
    LogUniform,
    Uniform,
    describe_distribution,
    from_optuna,
    parse_search_space,
    sample_config,
    to_optuna,
    validate_search_space,
)

__all__ = ["Choice", "Distribution", "LogUniform", "Uniform", "describe_distribution", "from_optuna",
           "parse_search_space", "sample_config", "to_optuna", "validate_search_space"]
