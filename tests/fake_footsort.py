"""`footsort` with the colour-reading fake model, for tests that run it as another process.

    python tests/fake_footsort.py watch INBOX     (instead of python -m footsort.cli watch INBOX)

The fake reaches the commands the way CliRunner tests give it: as ctx.obj["classifier_factory"].
"""

from __future__ import annotations

import sys

from fakes import fake_obj

from footsort.cli import main

if __name__ == "__main__":
    sys.exit(main(prog_name="footsort", obj=fake_obj()))
