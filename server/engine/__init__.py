"""The execution engine: store + queues + decider, behind the Engine facade.

Rules: the REST layer imports only `Engine`, `EngineConfig` (and `wall_clock_ms`);
every other module here is internal to the engine.
"""

from server.engine.config import EngineConfig
from server.engine.engine import Engine, wall_clock_ms

__all__ = ["Engine", "EngineConfig", "wall_clock_ms"]
