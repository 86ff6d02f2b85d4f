"""`python -m inventory_sync` is the `inventory-sync` command."""

import sys

from inventory_sync.cli import main

sys.exit(main())
