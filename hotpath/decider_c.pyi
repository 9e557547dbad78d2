from hotpath.decider_py import Run as Run
from hotpath.decider_py import Scope as Scope
from hotpath.decider_py import decide as decide
from hotpath.decider_py import find_task as find_task
