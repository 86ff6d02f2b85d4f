"""`python -m inventory_sync.simulator`: the simulator without the main CLI."""

from inventory_sync.simulator.cli import main

raise SystemExit(main())
