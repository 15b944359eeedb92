"""The ASGI application: the JSON API, the vRA Manager, the portal; errors mapped to HTTP."""
