"""Telling people what happened: the transactional outbox and its dispatcher."""
