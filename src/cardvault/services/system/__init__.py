"""The running system: first start, the runtime, health checks and housekeeping."""
