from hotpath.decider_py import Node as Node
from hotpath.decider_py import Plan as Plan
from hotpath.decider_py import Run as Run
from hotpath.decider_py import decide as decide
from hotpath.decider_py import find_task as find_task
from hotpath.decider_py import plan_for as plan_for
