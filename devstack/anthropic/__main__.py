import sys

from devstack.anthropic.cli import main

sys.exit(main())
