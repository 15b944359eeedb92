"""The organisation-scoped façade of the vRA Manager and the RA API."""
