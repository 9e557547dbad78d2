from hotpath.rows_py import Run as Run
from hotpath.rows_py import Scope as Scope
from hotpath.rows_py import find_task as find_task
from hotpath.rows_py import next_wake as next_wake
