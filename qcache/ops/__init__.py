"""What runs the cache, beside serving it: event-driven invalidation (more of seed 002 to come).

- :mod:`qcache.ops.events`: events, the invalidation actions they imply, and a handler registry (pure);
- :mod:`qcache.ops.invalidator`: applies events to a :class:`~qcache.QueryCache` or
  :class:`~qcache.AsyncQueryCache`, one failing handler never stopping the others;
- :mod:`qcache.ops.event_stream`: carries events between processes on a Redis Stream.
"""
