"""The card: the PIV applet as a pure core, and the APDU wire format the connector shares."""
