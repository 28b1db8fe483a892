"""Built-in data sets generated deterministically by code, named `builtin:NAME`; no download needed."""
