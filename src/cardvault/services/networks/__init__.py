"""Client networks: the service-wide ingress gate and each organisation's allow-list."""
