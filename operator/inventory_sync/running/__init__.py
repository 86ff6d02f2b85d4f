"""One run of a resource, from its credentials to its status: the steps both the operator and the CLI take."""
