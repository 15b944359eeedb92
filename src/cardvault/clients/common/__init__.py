"""What the agent, the connector and the authenticator share: the API client (HTTP, problem
details, JWE envelopes), the 0600 state file, the JSON they read, and the prompts."""
