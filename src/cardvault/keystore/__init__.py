"""Master-key providers (DESIGN §3.1): the local sealed key, later an HSM over PKCS#11."""
