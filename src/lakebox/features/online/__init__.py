"""Online stores: the latest feature row per key, for low-latency lookups by serving.

One interface (:class:`OnlineStore`), one module per backend: ``sqlite`` (embedded, the
default) and ``redis`` (``pip install 'lakebox[redis]'``). :func:`open_online_store` picks the
backend from a URI.

Example:
    >>> store = open_online_store("sqlite:////tmp/online.db")             # doctest: +SKIP
    >>> store.write("main.fs.customer", table, keys=["customer_id"])      # doctest: +SKIP
    >>> store.read("main.fs.customer", [{"customer_id": 42}])             # doctest: +SKIP
"""

from lakebox.features.online._base import OnlineStore, open_online_store

__all__ = ["OnlineStore", "open_online_store"]
