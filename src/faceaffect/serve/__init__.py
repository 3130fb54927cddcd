"""``faceaffect serve``: an HTTP API and a web page for analysing uploads (extra ``faceaffect[serve]``).

Models are loaded once per process; every inference runs on one lane (:mod:`~faceaffect.serve.lane`) fed by
one bounded queue shared by image requests and jobs; jobs live under a state folder and survive restarts.

>>> from faceaffect.serve import ServeSettings, create_app  # doctest: +SKIP
>>> app = create_app(ServeSettings(state_dir="state"))  # an ASGI app, for uvicorn  # doctest: +SKIP
"""

from faceaffect.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> object:
    if name == "create_app":  # FastAPI is imported only when the app is built
        from faceaffect.serve.app import create_app

        return create_app
    raise AttributeError(name)
