"""The one error type of the wire contract."""


class WireError(ValueError):
    """A message or topic that breaks the contract. The text says what and where."""
