"""Errors a person can fix: the CLI turns these into one line on stderr and exit code 2."""


class UserError(Exception):
    """A mistake in the config, flags or data that the user can correct; the message says how."""
