"""ssd_mnv2: a light single-shot face detector on MXNet/Gluon with a MobileNetV2 backbone."""

from .threads import default_omp_threads as _default_omp_threads

__version__ = "0.1.0"

_default_omp_threads()  # every core for MXNet unless OMP_NUM_THREADS says otherwise (see threads.py)
