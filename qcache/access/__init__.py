"""Access control for the cache inside one process: roles, role-bound views, audit trail, failed-access alerts.

- :mod:`qcache.access.policy`: permissions, roles (the seed's admin, service and
  client, plus your own), per-project grants, role tokens, and what each
  operation needs;
- :mod:`qcache.access.audit`: the JSON-lines audit trail, written off the request path;
- :mod:`qcache.access.guard`: what a cache keeps for access control (audit,
  denial counting and alerts, session expiry);
- :mod:`qcache.access.view`: the role-bound view that ``cache.as_role(...)`` returns.
"""
