"""The Store santé: the catalogue of referenced apps, their referencing, surveillance and reports.

Pure rules live in ``domain/store/``; this package keeps the catalogue's records (``service.py``)
and probes listed apps over the network (``probes.py``).
"""
