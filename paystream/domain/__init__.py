"""The payment domain: money rules, the payment state machine, commands and
errors. Plain Python with no I/O, so it is tested in milliseconds."""
