#!/usr/bin/env bash
# Build Horovod (CPU, Gloo controller, no MPI) against the installed mxnet==1.9.1 and install it.
#   scripts/install_horovod.sh [PYTHON] [TARGET]
# PYTHON: the interpreter of the virtualenv (default .venv/bin/python). TARGET: install into this
# folder instead of the virtualenv (use it with PYTHONPATH=TARGET; CI does this to keep the main
# test run free of Horovod). Needs cmake and a C++ compiler; about 3-10 minutes on 2 cores.
set -euo pipefail
PY=${1:-.venv/bin/python}
TARGET=${2:-}
"$PY" -m pip install -q wheel cloudpickle psutil packaging
extra=()
if [ -n "$TARGET" ]; then extra=(--target "$TARGET"); fi
# --no-build-isolation: Horovod's build imports the installed mxnet to find its headers and library
HOROVOD_WITH_MXNET=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_PYTORCH=1 \
HOROVOD_WITHOUT_MPI=1 HOROVOD_WITH_GLOO=1 \
  "$PY" -m pip install -q --no-deps --no-build-isolation "${extra[@]}" "horovod==0.28.1"
if [ -n "$TARGET" ]; then
  PYTHONPATH="$TARGET" "$PY" -c "import horovod.mxnet as hvd; hvd.init(); print('horovod', hvd.__version__ if hasattr(hvd, '__version__') else '', 'with MXNet: ok')"
else
  "$PY" -c "import horovod.mxnet as hvd; hvd.init(); print('horovod with MXNet: ok')"
fi
