"""The operator: kopf watches feed a scheduler that runs due resources and writes their status."""
