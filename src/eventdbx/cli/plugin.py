"""`dbx plugin …`: configure, enable, list, install, replay, test and supervise plugins."""

from __future__ import annotations

import click

from eventdbx.cli.plugin_admin import disable, enable, install, list_plugins, remove, replay
from eventdbx.cli.plugin_config import config
from eventdbx.cli.plugin_test import test
from eventdbx.cli.plugin_worker import start, status, stop


@click.group(help="Manage plugins")
def plugin() -> None:
    """Manage plugins"""


for _command in (
    config,
    enable,
    disable,
    remove,
    list_plugins,
    install,
    replay,
    test,
    start,
    stop,
    status,
):
    plugin.add_command(_command)
