"""The web console for supervisors, auditors and admins: server-rendered pages (FastAPI + Jinja2),
in Chinese and English, over the central's SQLite file and evidence store.

    from central.console import create_app, ConsoleSettings
    app = create_app(config)                    # console + the JSON/Open311 API behind it

    from central.console.stack import ConsoleStack
    stack = ConsoleStack(config, host="127.0.0.1", port=8080).start()   # uvicorn on a thread

Pages and element ids are a contract with the browser tests (docs/console.md).
"""

from central.console.app import create_app, create_console_app
from central.console.settings import PAGE_SIZE, ConsoleSettings, console_settings_of

__all__ = ["PAGE_SIZE", "ConsoleSettings", "console_settings_of", "create_app", "create_console_app"]
