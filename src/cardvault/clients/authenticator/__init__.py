"""The reference authenticator: a command-line program that behaves as the phone app does.

It speaks docs/protocols/device.md. Tests and the demo use it; a mobile developer can read it
as a worked example of the protocol."""
