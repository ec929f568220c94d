"""The cache facades and the logic they share: levels, write strategies, single-flight, coherence, metrics.

:class:`QueryCache` (threads) and :class:`AsyncQueryCache` (asyncio) run the
same plans; each module here has one job:

========================  ==========================================================
``sync``, ``aio``         the facades; sync's shared operations are derived from aio's
``facade``                what both facades share: construction, views, L2 backend, stats
``core``                  the state of one cache and how it follows its configuration
``reads``, ``writes``     the read and write operations (``get`` and ``set`` as plain steps)
``invalidation``          pattern invalidation and ``clear`` over every tier
``flushing``, ``flusher`` write-back batches to L2; the flusher's schedule and flush deadline
``observe``               the health probe and the stats snapshot
``monitor``               background health checks and their alerts
``plans``                 the vocabulary between plans and facades (``L2Call``, ``MISSING``)
``locator``, ``keys``     cache types and storage keys
``entries``, ``record``   values as L2 records with their expiry
``writeback``             the write-back queue
``generations``           write generations: no stale L1 fill after a write or delete
``failures``              what an L2 failure becomes (a counted miss, or an error in strict mode)
``inputs``                checks of caller keys and TTLs
``metrics``               hit, miss, error counters and latency histograms
========================  ==========================================================
"""

from qcache.cache.aio import AsyncQueryCache
from qcache.cache.sync import QueryCache

__all__ = ["AsyncQueryCache", "QueryCache"]
