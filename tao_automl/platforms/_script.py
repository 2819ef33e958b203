"""The bash job body shared by the slurm and brev backends: exports plain env,
runs the command (under coreutils ``timeout`` when a limit is set), marks a
timeout in ``$ctl/timed_out`` and writes ``$ctl/exitcode`` atomically.
It never contains secret values (those come from the environment)."""

from __future__ import annotations

import math
import shlex

from tao_automl.platforms.base import JobRequest


def job_body(request: JobRequest, ctl: str, grace_s: float) -> list[str]:
    """Lines of bash that run ``request`` and record its exit code in ``ctl``."""
    q = shlex.quote
    run = (f"bash -c {q(request.command)}" if request.command is not None
           else " ".join(q(a) for a in request.argv or ()))
    lines = [f"ctl={q(ctl)}"]
    lines += [f"export {k}={q(v)}" for k, v in request.env.items()]
    if request.gpu_ids:
        lines.append(f"export CUDA_VISIBLE_DEVICES={','.join(str(int(g)) for g in request.gpu_ids)}")
    if request.timeout_s:
        t = float(request.timeout_s)
        lines += ["start=$(date +%s)", f"timeout --kill-after={grace_s:g} {t:g} {run}", "rc=$?",
                  f'if {{ [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; }} && '
                  f'[ $(( $(date +%s) - start )) -ge {math.floor(t)} ]; then',
                  f'  echo "tao_automl: time limit of {t:g} s exceeded" >&2',
                  '  echo "$rc" > "$ctl/timed_out"', "fi"]
    else:
        lines += [run, "rc=$?"]
    lines += ['echo "$rc" > "$ctl/exitcode.tmp.$$" && mv -f "$ctl/exitcode.tmp.$$" "$ctl/exitcode"',
              'exit "$rc"']
    return lines
