"""Dashboard views, one module per page; each is a thin caller of selectors and services."""
