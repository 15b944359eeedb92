"""The ``cardvault`` admin command line: parse, call a service, print; errors to exit codes."""
