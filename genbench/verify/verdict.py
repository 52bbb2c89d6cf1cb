"""The import path ``genbench.verify.verdict`` of earlier releases: the verdicts now live in
:mod:`genbench.verdict`, at the bottom of genbench's imports, shared by check, reproduce and speed."""

from genbench.verdict import REPRODUCED, Verdict

__all__ = ["REPRODUCED", "Verdict"]
