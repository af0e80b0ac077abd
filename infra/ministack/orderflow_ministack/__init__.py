"""orderflow's launcher for ministack, the second local cloud (the one that enforces IAM).

ministack has no plugin system, so `python -m orderflow_ministack` imports it, applies the fixes
in `patches.py` (each one a place where ministack does not do what AWS does, with the AWS
documentation it follows), and then runs ministack's own `main()` in the same process.

Layout:
- `__main__.py`: apply the patches, then serve.
- `patches.py`: the fixes, and the authorization log that the least-privilege test reads.
"""
