class StackError(Exception):
    """A stack operation failed; the message says what to do about it."""
