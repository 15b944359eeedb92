"""Key rotation, online: the master key re-sealed, transport, audit and CA keys replaced."""
