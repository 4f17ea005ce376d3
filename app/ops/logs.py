"""Logging for every process of the server: JSON lines or text, the same in each worker."""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

from app import context

# The stdlib fields a JSON line carries, renamed the way log collectors expect them (process:
# which worker); anything passed as `extra=` (the access log's fields) follows them.
_JSON_FIELDS = "{timestamp}{levelname}{name}{message}{process}"
_JSON_RENAMES = {"levelname": "level", "name": "logger"}
_TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
# uvicorn logs its messages a second time with terminal colours, as an extra field.
_NOT_FIELDS = [*RESERVED_ATTRS, "color_message"]


def formatter(log_format: str) -> logging.Formatter:
    """The formatter factory dictConfig calls, in the CLI and in every uvicorn worker."""
    # Python's warnings become log records too, so every line has one format. Here because
    # applying the configuration is all that uvicorn's workers run of ours before serving.
    logging.captureWarnings(True)
    if log_format == "json":
        # python-json-logger: one JSON object per line, with an RFC 3339 UTC timestamp.
        return OrjsonFormatter(
            _JSON_FIELDS,
            style="{",
            rename_fields=_JSON_RENAMES,
            reserved_attrs=_NOT_FIELDS,
            timestamp=True,
        )
    return logging.Formatter(_TEXT_FORMAT)


class RequestIdFilter(logging.Filter):
    """Puts the request id on every record logged while a request is served, so an error's
    line names the request whose problem body quotes the same id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            request_id = context.request_id.get()
            if request_id is not None:
                record.request_id = request_id
        return True


def config(level: str, log_format: str, access_log: bool = True) -> dict[str, Any]:
    """A logging.config.dictConfig dictionary: applied by the CLI, and handed to uvicorn,
    which applies it again in every worker process it starts."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "app.ops.logs.RequestIdFilter"}},
        "formatters": {"default": {"()": "app.ops.logs.formatter", "log_format": log_format}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["request_id"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # uvicorn's loggers come with handlers of their own in its default configuration:
        # here they pass their records to the root's, so every line has one format.
        "loggers": {
            "uvicorn": {"level": level.upper(), "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            # Its access log prints the raw request line (query strings included); the
            # server writes its own (app.edge.access), so this one stays silent.
            "uvicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            # A line costs about as many instructions as 7% of a license validation: at
            # volume, an operator may keep the rest of the log and drop this one.
            "coditect.access": {"level": level.upper() if access_log else "WARNING"},
        },
    }


def configure(level: str, log_format: str, access_log: bool = True) -> dict[str, Any]:
    """Applies the configuration in this process and returns it, for uvicorn's workers."""
    settings = config(level, log_format, access_log)
    logging.config.dictConfig(settings)
    return settings
