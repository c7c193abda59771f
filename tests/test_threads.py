"""OMP_NUM_THREADS default: physical cores, set on import unless the user set it or MXNet came first."""
import os
import subprocess
import sys

from ssd_mnv2.threads import physical_cores


def _sysfs(tmp_path, siblings):
    for cpu, sib in siblings.items():
        d = tmp_path / f"cpu{cpu}" / "topology"
        d.mkdir(parents=True)
        (d / "thread_siblings_list").write_text(sib + "\n")
    return str(tmp_path)


def test_physical_cores_counts_hyperthread_siblings_once(tmp_path):
    root = _sysfs(tmp_path, {0: "0,2", 1: "1,3", 2: "0,2", 3: "1,3"})
    assert physical_cores(range(4), root) == 2           # 2 cores x 2 threads
    assert physical_cores([0, 2], root) == 1             # affinity to one core's two threads
    assert physical_cores([0, 1, 5], root) == 3          # cpu5 has no topology: a core of its own


def test_physical_cores_without_hyperthreading(tmp_path):
    root = _sysfs(tmp_path, {0: "0", 1: "1"})
    assert physical_cores(range(2), root) == 2           # where MXNet's own default would take 1


def _omp_after_import(code, env_omp=None):
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if env_omp is not None:
        env["OMP_NUM_THREADS"] = env_omp
    out = subprocess.run([sys.executable, "-c", code + "; import os; print(os.environ.get('OMP_NUM_THREADS'))"],
                         env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_import_sets_omp_threads_unless_set_or_mxnet_first():
    assert _omp_after_import("import ssd_mnv2") == str(physical_cores())
    assert _omp_after_import("import ssd_mnv2", env_omp="1") == "1"
    assert _omp_after_import("import mxnet, ssd_mnv2") == "None"
