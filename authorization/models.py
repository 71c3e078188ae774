"""authorization models. See DOMAIN.md."""
