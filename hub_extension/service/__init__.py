"""The competition service: the tornado application JupyterHub runs as `competitions`.

`python -m hub_extension.service` is the command the hub starts (see
`jupyterhub_config.py`); `app.make_app` builds the application (the REST API of
`api.py`, the pages of `pages.py`, static files); `base.py` holds the request
handler base classes that turn a hub identity into an `Actor` and platform
errors into HTTP answers.  Every rule lives in `hub_extension.app.Platform`.
"""
