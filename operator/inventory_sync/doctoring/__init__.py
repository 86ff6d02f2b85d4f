"""`inventory-sync doctor`: what is wrong with an installation, one PASS/WARN/FAIL line per check.

One module per family of checks, each a plain `check(...) -> list[Finding]`:
`cluster` (the API server), `crds`, `access` (the operator's RBAC), `database`, `secrets`,
`credentials` (opt-in token requests), `resources` (stuck or stalled). `command` runs them in
that order and `findings` renders the report. Nothing here writes to the cluster or the
database, except the access reviews the API server answers without storing.
"""
