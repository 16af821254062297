"""Access to Assay over the network: per-user bearer tokens with scopes.

This package sits on the jobs floor (above bundles/, below the domain and the faces): it
knows the catalog and nothing of HTTP. The server turns its errors into 401/403 responses.
"""
