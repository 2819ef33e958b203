"""The bash job body shared by the slurm and brev backends: exports plain env,
runs the command (under coreutils ``timeout`` when a limit is set), marks a
timeout in ``$ctl/timed_out`` and writes ``$ctl/exitcode`` atomically.
It never contains secret values (those come from the environment); when the
request has ``secret_env``, the job's output goes through :data:`MASK_AWK`,
which replaces each value by ``***`` line by line before the output file
(SLURM's ``--output``, brev's ``job.log``) is written."""

from __future__ import annotations

import math
import shlex

from tao_automl.platforms.base import JobRequest

#: awk filter (POSIX awk, line-buffered by fflush) replacing the values of the
#: environment variables listed in ``names`` (longer than 3 characters) by ***.
#: ``$tao_awk`` is :data:`AWK_PICK`'s choice: mawk (Debian's default awk) reads a
#: pipe in whole blocks unless ``-W interactive``, so a job's lines would reach its
#: output file (and the live metrics) only when 4 KB had piled up or the job ended.
MASK_AWK = ("$tao_awk -v names={names} 'BEGIN {{ n = split(names, N, \" \"); "
            "for (i = 1; i <= n; i++) {{ v = ENVIRON[N[i]]; if (length(v) > 3) V[++m] = v }} }} "
            "{{ line = $0; for (i = 1; i <= m; i++) {{ out = \"\"; "
            "while ((p = index(line, V[i])) > 0) {{ out = out substr(line, 1, p - 1) \"***\"; "
            "line = substr(line, p + length(V[i])) }} line = out line }} print line; fflush() }}'")
#: bash choosing the awk of :data:`MASK_AWK`: mawk with ``-W interactive`` (line by line), any other as is
AWK_PICK = ('if awk -W version 2>/dev/null | grep -qi mawk; then tao_awk="awk -W interactive"; '
            'else tao_awk=awk; fi')


def job_body(request: JobRequest, ctl: str, grace_s: float) -> list[str]:
    """Lines of bash that run ``request`` and record its exit code in ``ctl``."""
    q = shlex.quote
    run = (f"bash -c {q(request.command)}" if request.command is not None
           else " ".join(q(a) for a in request.argv or ()))
    # Secret values never reach the output file: mask them as the job writes.
    # (The names were validated as POSIX names by the backend.)
    pipe = f" 2>&1 | {MASK_AWK.format(names=q(' '.join(request.secret_env)))}" if request.secret_env else ""
    status = "${PIPESTATUS[0]}" if pipe else "$?"
    lines = [f"ctl={q(ctl)}"]
    if pipe:
        lines.append(AWK_PICK)
    lines += [f"export {k}={q(v)}" for k, v in request.env.items()]
    if request.gpu_ids:
        lines.append(f"export CUDA_VISIBLE_DEVICES={','.join(str(int(g)) for g in request.gpu_ids)}")
    if request.timeout_s:
        t = float(request.timeout_s)
        lines += ["start=$(date +%s)", f"timeout --kill-after={grace_s:g} {t:g} {run}{pipe}", f"rc={status}",
                  f'if {{ [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; }} && '
                  f'[ $(( $(date +%s) - start )) -ge {math.floor(t)} ]; then',
                  f'  echo "tao_automl: time limit of {t:g} s exceeded" >&2',
                  '  echo "$rc" > "$ctl/timed_out"', "fi"]
    else:
        lines += [run + pipe, f"rc={status}"]
    lines += ['echo "$rc" > "$ctl/exitcode.tmp.$$" && mv -f "$ctl/exitcode.tmp.$$" "$ctl/exitcode"',
              'exit "$rc"']
    return lines
