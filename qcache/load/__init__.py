"""Load testing qcache with Locust: exact latencies, workloads, shapes, results and checks.

The pure parts (no Locust import, tested as code) live here:

- :mod:`qcache.load.histogram`: per user class and operation HdrHistograms, mergeable across processes;
- :mod:`qcache.load.workload`: Zipf keys and value factories for the users;
- :mod:`qcache.load.shapes`: the load shapes as plain schedules of time;
- :mod:`qcache.load.knee`: the knee of a ramp;
- :mod:`qcache.load.results`: the run folder under ``results/load/<run-id>/``;
- :mod:`qcache.load.check`: ``qcache load check`` against the configured thresholds.

:mod:`qcache.load.harness` wires them into Locust (it imports Locust, which
patches the standard library with gevent); the ``loadtests/`` folder holds the
user and shape classes that ``locust -f loadtests/`` finds.
"""
