"""cargohold's command line: ``python pipelines.py --help``.

A thin shim: the commands live in ``ci/src/cargohold/cli.py`` and call the same
``Cargohold`` object that ``dagger call`` sees.
"""

import sys

from cargohold.cli import main

if __name__ == "__main__":
    sys.exit(main())
