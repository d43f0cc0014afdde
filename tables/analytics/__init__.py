"""Analytics, in one place: what analysts query about payments, counted from the events topic.

- counts.py: what each payment event adds to the tallies (pure);
- tables.py: the windowed and per-user tables that hold them (Faust, RocksDB, changelogs);
- views.py: the analysts' views over the windows, and their columns (pure);
- agents.py: the analytics app, `paystream analytics`: its agents count events into the tables;
- pages.py: the pages that answer queries from every partition;
- charts.py: the monitor's charts of the status view (pure).

A new view of the windows is a view in views.py and its `paystream query` command (paystream/analyst_cli.py).
"""
