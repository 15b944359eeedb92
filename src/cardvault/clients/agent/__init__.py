"""The identity agent: the cardvault client on the user's PC."""
