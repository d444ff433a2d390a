"""nnq's service: HTTP API, DB layer and job logic.

``create_app`` is imported lazily so that ``import service.db`` on a worker host
never pulls in Flask.
"""


def create_app(config=None):
    """Build the Flask app (see ``service.app.create_app``); the WSGI entry point."""
    from service.app import create_app as _create_app

    return _create_app(config)
