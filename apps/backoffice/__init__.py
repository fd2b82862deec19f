"""The operator console's shared pieces, used by the apps' admin modules: read-only admins,
list filters, forms, the overview figures and the "why was I charged this?" explanation.

A plain package, not an installed app: it has no models, and its templates live in
templates/admin/.
"""
