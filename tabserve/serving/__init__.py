"""What the BentoML service delegates to: the model runtime, HTTP guards and errors, feedback, metrics."""
