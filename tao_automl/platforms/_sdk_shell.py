"""Run one shell command line: ``python _sdk_shell.py COMMAND``.

A TAO SDK platform that only launches Python scripts (``VirtualEnvSDK``'s
``create_python_job``) runs shell-command jobs through this shim.  It replaces
itself with ``bash -c COMMAND`` (same process, so the platform's signals and
exit code reach the command directly).  Standard library only: it runs under
the platform's interpreter.
"""

import os
import sys

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: _sdk_shell.py COMMAND\n")
        sys.exit(2)
    os.execvp("bash", ["bash", "-c", sys.argv[1]])
