"""The JSON API (FastAPI, OpenAPI docs at /docs) and Open311 GeoReport v2, over the central's store.

    from central.api.app import create_app
    from central.api.context import ApiContext
    from central.api.server import ApiServer

Kept free of imports so that `central.api.settings` can be read without pulling in FastAPI.
"""
