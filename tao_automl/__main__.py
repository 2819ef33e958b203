"""``python -m tao_automl`` == ``tao-automl``."""

import sys

from tao_automl.cli import main

sys.exit(main())
