"""Holders look after their own card: "My card" on the portal and an invitation's last step."""
