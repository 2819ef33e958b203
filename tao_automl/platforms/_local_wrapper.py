"""Job wrapper for the local backend (standard library only; run by path).

Usage: ``python _local_wrapper.py CONTROL_DIR TIMEOUT_S GRACE_S -- ARGV...``

Runs ARGV in this process group (the backend made the wrapper a session
leader), enforces the time limit (SIGTERM to the group, SIGKILL after the
grace period) and records the exit code atomically in ``CONTROL_DIR/exitcode``
so a driver that restarted can still learn it.  ``CONTROL_DIR/timed_out`` marks
a timeout.  The wrapper outlives SIGTERM long enough to record the code.
"""

import os
import signal
import subprocess
import sys


def _write(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(args):
    ctl, timeout_s, grace_s = args[0], float(args[1]), float(args[2])
    argv = args[args.index("--") + 1:]
    signal.signal(signal.SIGTERM, lambda *_: None)  # record the exit code first
    try:
        child = subprocess.Popen(argv)
    except OSError as exc:
        print(f"tao_automl: cannot start {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        _write(os.path.join(ctl, "exitcode"), "127\n")
        return 127
    try:
        rc = child.wait(timeout=timeout_s if timeout_s > 0 else None)
    except subprocess.TimeoutExpired:
        _write(os.path.join(ctl, "timed_out"), f"{timeout_s}\n")
        print(f"tao_automl: time limit of {timeout_s:g} s exceeded; stopping the job",
              file=sys.stderr, flush=True)
        os.killpg(0, signal.SIGTERM)
        try:
            rc = child.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            child.kill()
            rc = child.wait()
        code = 128 - rc if rc < 0 else rc
        _write(os.path.join(ctl, "exitcode"), f"{code}\n")
        os.killpg(0, signal.SIGKILL)  # leave no straggler of a timed-out job
    code = 128 - rc if rc < 0 else rc
    _write(os.path.join(ctl, "exitcode"), f"{code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
