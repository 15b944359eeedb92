"""Cards: issuance, lookup, enrolment, invitations, operations, state, sealing, methods."""
