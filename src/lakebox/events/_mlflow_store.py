"""MLflow's SQLAlchemy registry store, emitting lakebox events for every change.

Imported only by the plugin builder, so importing lakebox never imports MLflow's store.
"""

from __future__ import annotations

from typing import Any

from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

from lakebox.events._outbox import Outbox
from lakebox.events._types import current_context, stage_event

__all__ = ["EventingRegistryStore"]


class EventingRegistryStore(SqlAlchemyStore):
    """A registry store that writes an outbox event after each successful change.

    Args:
        db_uri: MLflow's registry database URI (``sqlite:///...``, ``postgresql://...``).
        outbox: the workspace outbox to write to.
    """

    def __init__(self, db_uri: str, *, outbox: Outbox) -> None:
        super().__init__(db_uri)
        self.outbox = outbox

    def create_registered_model(
        self, name: Any, tags: Any = None, description: Any = None, deployment_job_id: Any = None
    ) -> Any:
        model = super().create_registered_model(
            name, tags=tags, description=description, deployment_job_id=deployment_job_id
        )
        self.outbox.emit(
            "REGISTERED_MODEL_CREATED",
            model_name=model.name,
            text=f"Registered model '{model.name}' was created.",
        )
        return model

    def create_model_version(
        self,
        name: Any,
        source: Any,
        run_id: Any = None,
        tags: Any = None,
        run_link: Any = None,
        description: Any = None,
        local_model_path: Any = None,
        model_id: Any = None,
    ) -> Any:
        version = super().create_model_version(
            name,
            source,
            run_id=run_id,
            tags=tags,
            run_link=run_link,
            description=description,
            local_model_path=local_model_path,
            model_id=model_id,
        )
        self.outbox.emit(
            "MODEL_VERSION_CREATED",
            model_name=version.name,
            version=str(version.version),
            run_id=version.run_id or None,
            text=f"A new version {version.version} of registered model "
            f"'{version.name}' was created.",
        )
        return version

    def transition_model_version_stage(
        self, name: Any, version: Any, stage: Any, archive_existing_versions: Any
    ) -> Any:
        before = super().get_model_version(name, version).current_stage
        result = super().transition_model_version_stage(
            name, version, stage, archive_existing_versions
        )
        to_stage = result.current_stage
        context = current_context()
        self.outbox.emit_many(
            [
                (
                    event,
                    {
                        "from_stage": before,
                        "to_stage": to_stage,
                        "text": text,
                        "user_id": context.get("user_id"),
                    },
                )
                for event, text in stage_event(result.name, str(result.version), before, to_stage)
            ],
            model_name=result.name,
            version=str(result.version),
        )
        return result

    def set_model_version_tag(self, name: Any, version: Any, tag: Any) -> None:
        super().set_model_version_tag(name, version, tag)
        self.outbox.emit(
            "MODEL_VERSION_TAG_SET",
            model_name=name,
            version=str(version),
            tags=[{"key": tag.key, "value": tag.value}],
            text=f"Set version tag '{tag.key}' => '{tag.value}' for registered "
            f"model '{name}' version {version}.",
        )

    def set_registered_model_alias(self, name: Any, alias: Any, version: Any) -> None:
        super().set_registered_model_alias(name, alias, version)
        self.outbox.emit(
            "MODEL_VERSION_ALIAS_SET",
            model_name=name,
            version=str(version),
            alias=alias,
            text=f"Alias '@{alias}' of registered model '{name}' now points to version {version}.",
        )

    def delete_registered_model_alias(self, name: Any, alias: Any) -> None:
        try:
            previous = str(super().get_model_version_by_alias(name, alias).version)
        except Exception:
            previous = None
        super().delete_registered_model_alias(name, alias)
        self.outbox.emit(
            "MODEL_VERSION_ALIAS_DELETED",
            model_name=name,
            version=previous,
            alias=alias,
            text=f"Alias '@{alias}' of registered model '{name}' was deleted.",
        )
