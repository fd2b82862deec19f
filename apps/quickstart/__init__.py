"""`manage.py demo`: the whole platform on embedded defaults, in one command."""
