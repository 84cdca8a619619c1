"""The Chalice app's functions, loaded and called as Lambda would call them."""

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from chalice import Chalice
from chalice.cli.factory import CLIFactory
from chalice.config import Config
from chalice.local import LambdaContext, LocalChalice

DEFAULT_TIMEOUT_S = 60  # Chalice's default Lambda timeout
DEFAULT_MEMORY_MB = 128


@dataclass
class Functions:
    module: ModuleType
    app: Chalice
    config: Config  # the Chalice stage's configuration (.chalice/config.json)

    @property
    def stage(self) -> str:
        return self.config.chalice_stage

    @property
    def api_stage(self) -> str:
        return self.config.api_gateway_stage or "api"

    def handler(self, name: str):
        """The deployed entry point: the module attribute Chalice's decorator returned."""
        return getattr(self.module, name)

    def context(self, name: str) -> LambdaContext:
        scoped = self.config.scope(self.stage, name)
        return LambdaContext(
            function_name=f"{self.app.app_name}-{self.stage}-{name}",
            memory_size=scoped.lambda_memory_size or DEFAULT_MEMORY_MB,
            max_runtime_ms=(scoped.lambda_timeout or DEFAULT_TIMEOUT_S) * 1000,
        )

    def call(self, name: str, event: dict) -> Any:
        return self.handler(name)(event, self.context(name))


def stage_config(project_dir: Path, stage: str) -> Config:
    """The Chalice stage's configuration (``.chalice/config.json``)."""
    return CLIFactory(str(project_dir)).create_config_obj(chalice_stage_name=stage)


def load(config: Config, app_spec: str = "app") -> Functions:
    """Import the app (``module`` or ``module:attribute``); its settings must be in the
    environment already (see ``localaws.__main__.export_settings``)."""
    module_name, _, attribute = app_spec.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attribute or "app")
    # Chalice keeps ``current_request`` on the app object. ``chalice local`` swaps in a
    # class that keeps it per thread (see chalice.local.create_local_server); so do we,
    # since requests run side by side in a thread pool.
    if not isinstance(app, LocalChalice):
        app.__class__ = type("LocalRuntimeChalice", (LocalChalice, app.__class__), {})
    return Functions(module=module, app=app, config=config)
