"""Stream-processing entrypoint (Faust agents): runs the payment state machine."""
