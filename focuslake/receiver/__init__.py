"""The central ingest receiver: other machines' collectors upload sealed segments and apps post
JSON events over HTTP; both land in this machine's landing zone under the uploading device's
own user/device path, for the ordinary ingest to pick up. See docs/receiver.md.

    python -m focuslake.receiver token create --user U --device D   # prints a token once
    python -m focuslake.receiver serve                              # 127.0.0.1:8765
"""
from focuslake.receiver.settings import Settings

__all__ = ["Settings", "create_app"]


def __getattr__(name: str):
    if name == "create_app":  # FastAPI is imported only by what serves
        from focuslake.receiver.app import create_app

        return create_app
    raise AttributeError(name)
