"""Programs on the person's devices, talking to the service over HTTP(S) only."""
