"""Tests of `hub_extension`, in folders that mirror its packages.

A test lives where the code it tests lives: `app/` (the application layer),
`bundles/`, `service/`, `widgets/`, `lab/` (starting kits in JupyterLab:
`starting_kit.py` and `app/lab.py`, with the in-Lab browser tests).  The
modules at the top of `hub_extension` (the client, the CLI, configuration,
the contract, the database, the dispatcher and the queues, the embedded
default) have their tests at the top of this folder.
"""
