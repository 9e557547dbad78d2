from hotpath.mapping_py import *  # noqa: F403
