"""gifts models. See DOMAIN.md."""
