"""inventory-sync-operator: keeps PostgreSQL in step with network inventory held upstream."""

__version__ = "0.1.0"
