import sys

from ondaverde.cli import main

sys.exit(main())
