import os
import sys
from pathlib import Path

# one thread: MXNet's CPU random init and float reductions are then reproducible across
# processes (the distributed test compares workers with a single-process reference)
os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
