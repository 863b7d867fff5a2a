"""``python -m supervisor`` is the ``lunatrio`` command."""

import sys

from .cli import main

sys.exit(main())
