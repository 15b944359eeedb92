"""Paired phones: pairing, signed requests, push with number matching, QR and mobile sign-in.

DESIGN §3.2, §3.3; docs/protocols/device.md: pairing by QR code, signed device requests, push
challenges with number matching, QR sign-in and the mobile identity agent. The second factor
the engine sees is :mod:`cardvault.services.signin.factors.authenticator`.
"""
