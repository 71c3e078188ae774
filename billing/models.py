"""billing models. See DOMAIN.md."""
