from hotpath.decider_py import DecisionRun as DecisionRun
from hotpath.decider_py import decide as decide
