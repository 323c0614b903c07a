"""Privacy by design (issue 9): consent, retention by data class, forgetting a user, keyed
hashes and the access log. Every module here works on one data root (:class:`Paths`) and is
called by the CLI (``python -m focuslake.privacy``), the Airflow DAGs and the tests alike.

* :mod:`.keys`        -- the installation's secret and keyed hashes (receipts, access log)
* :mod:`.access_log`  -- who ran which export / forget / consent command, as JSON lines
"""
