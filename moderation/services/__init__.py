"""Plain service functions: the only place that commits."""
