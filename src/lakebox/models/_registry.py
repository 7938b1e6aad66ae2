"""``ws.models``: the Databricks workspace-registry lifecycle on MLflow's registry.

Registered models and versions, descriptions, tags and aliases live in MLflow's store (reached
through lakebox's registry-store plugin, so every change emits events); transition requests,
comments and the activity history live in the metadata database.
"""

from __future__ import annotations

import builtins
import contextlib
import getpass
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from lakebox.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    LakeboxError,
    NotFound,
    close_matches,
)
from lakebox.events import Outbox, event_context
from lakebox.events._outbox import now_ms
from lakebox.events._types import transition_request_event
from lakebox.models import _schema as s

if TYPE_CHECKING:
    from lakebox.workspace import Workspace

__all__ = ["STAGES", "Activity", "ModelRegistry", "canonical_stage"]

STAGES = ("None", "Staging", "Production", "Archived")
# A guard returns a reason to refuse deleting (model name, version or None for the whole model).
DeleteGuard = Callable[[str, "str | None"], "str | None"]


def canonical_stage(stage: str) -> str:
    """``"staging"`` -> ``"Staging"``; refuses anything that is not a registry stage."""
    for known in STAGES:
        if str(stage).strip().lower() == known.lower():
            return known
    raise InvalidInput(
        f"Invalid stage {stage!r}.{close_matches(str(stage).title(), STAGES)} "
        f"Valid stages: {', '.join(STAGES)}."
    )


@dataclass(frozen=True)
class Activity:
    """A transition request, applied transition or comment on a model version."""

    id: int
    model_name: str
    version: str
    activity_type: str
    user_id: str
    creation_timestamp: int
    last_updated_timestamp: int
    from_stage: str | None = None
    to_stage: str | None = None
    comment: str | None = None
    system_comment: str | None = None
    request_status: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Databricks' ``Activity`` JSON."""
        out: dict[str, Any] = {
            "id": str(self.id),
            "activity_type": self.activity_type,
            "user_id": self.user_id,
            "creation_timestamp": self.creation_timestamp,
            "last_updated_timestamp": self.last_updated_timestamp,
        }
        for key in ("from_stage", "to_stage", "comment", "system_comment"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def _activity(row: Any) -> Activity:
    return Activity(
        id=row.id,
        model_name=row.model_name,
        version=row.version,
        activity_type=row.activity_type,
        user_id=row.user_id,
        creation_timestamp=row.creation_timestamp,
        last_updated_timestamp=row.last_updated_timestamp,
        from_stage=row.from_stage,
        to_stage=row.to_stage,
        comment=row.comment,
        system_comment=row.system_comment,
        request_status=row.request_status,
    )


@contextlib.contextmanager
def _mlflow_errors(what: str) -> Iterator[None]:
    """Translate MLflow's exceptions into lakebox errors naming ``what``."""
    from mlflow.exceptions import MlflowException

    try:
        with warnings.catch_warnings():
            # Stages are deprecated upstream but are the Databricks workspace-registry model.
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow\..*")
            warnings.filterwarnings("ignore", message=r".*[Ss]tage.*", category=FutureWarning)
            yield
    except MlflowException as exc:
        code = exc.error_code
        message = f"{what}: {exc.message}"
        if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in str(exc.message).lower():
            raise NotFound(message + " (`lakebox models list` shows what exists)") from None
        if code == "RESOURCE_ALREADY_EXISTS":
            raise AlreadyExists(message) from None
        if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
            raise InvalidInput(message) from None
        raise LakeboxError(message) from None


class ModelRegistry:
    """The registry lifecycle of a workspace (``ws.models``).

    Example:
        >>> models = ws.models                                                  # doctest: +SKIP
        >>> models.transition_stage("churn", 2, "Staging", comment="passes")    # doctest: +SKIP
        >>> models.set_alias("churn", "champion", 2)                            # doctest: +SKIP
        >>> models.create_transition_request("churn", 2, "Production")          # doctest: +SKIP
        >>> models.approve_transition_request("churn", 2, "Production",         # doctest: +SKIP
        ...                                   archive_existing_versions=True)
    """

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.outbox = Outbox(ws.metadata)
        from lakebox.models._wiring import serving_guard

        # Reasons to refuse a delete; serving's guard is built in, others may append.
        self.delete_guards: builtins.list[DeleteGuard] = [serving_guard(ws)]
        self._client: Any = None

    @property
    def client(self) -> Any:
        """An ``mlflow.MlflowClient`` on this workspace's tracking and registry URIs."""
        if self._client is None:
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.ws.tracking_uri, registry_uri=self.ws.registry_uri
            )
        return self._client

    # ------------------------------------------------------------------ models
    def register(
        self,
        model_uri: str,
        name: str,
        *,
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Any:
        """Register a logged model (``runs:/<id>/model``, ``models:/m-...``) as a new version
        of ``name`` (created if missing); returns the MLflow ``ModelVersion``."""
        import mlflow

        with _mlflow_errors(f"Registering {model_uri!r} as {name!r}"):
            previous = mlflow.get_registry_uri()
            mlflow.set_registry_uri(self.ws.registry_uri)
            try:
                version = mlflow.register_model(model_uri, name, tags=tags)
            finally:
                mlflow.set_registry_uri(previous)
            if description:
                version = self.client.update_model_version(
                    name, version.version, description=description
                )
        return version

    def create_model(
        self, name: str, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> Any:
        """Create an empty registered model."""
        with _mlflow_errors(f"Creating registered model {name!r}"):
            return self.client.create_registered_model(name, tags=tags, description=description)

    def get_model(self, name: str) -> Any:
        """A registered model (MLflow ``RegisteredModel``)."""
        with _mlflow_errors(f"Registered model {name!r}"):
            return self.client.get_registered_model(name)

    def exists(self, name: str) -> bool:
        """Whether a registered model of that name exists."""
        try:
            self.get_model(name)
        except NotFound:
            return False
        return True

    def list(self, *, filter_string: str | None = None) -> builtins.list[Any]:
        """Registered models, by name."""
        with _mlflow_errors("Listing registered models"):
            models = list(
                self.client.search_registered_models(filter_string=filter_string, max_results=1000)
            )
        return sorted(models, key=lambda m: m.name)

    def versions(self, name: str) -> builtins.list[Any]:
        """Every version of a model, oldest first."""
        self.get_model(name)
        with _mlflow_errors(f"Versions of {name!r}"):
            found = self.client.search_model_versions(f"name='{name}'", max_results=10000)
        return sorted(found, key=lambda v: int(v.version))

    def get_version(self, name: str, version: int | str) -> Any:
        """One model version (MLflow ``ModelVersion``)."""
        version = self._check_version(version)
        self.get_model(name)
        with _mlflow_errors(f"Version {version} of registered model {name!r}"):
            return self.client.get_model_version(name, version)

    def set_description(
        self, name: str, description: str, *, version: int | str | None = None
    ) -> None:
        """Describe a model, or one version of it."""
        if version is None:
            with _mlflow_errors(f"Registered model {name!r}"):
                self.client.update_registered_model(name, description=description)
        else:
            self.get_version(name, version)
            with _mlflow_errors(f"Version {version} of {name!r}"):
                self.client.update_model_version(name, str(version), description=description)

    def set_tag(self, name: str, key: str, value: str, *, version: int | str | None = None) -> None:
        """Tag a model, or one version (``MODEL_VERSION_TAG_SET``)."""
        if version is None:
            with _mlflow_errors(f"Registered model {name!r}"):
                self.client.set_registered_model_tag(name, key, value)
        else:
            self.get_version(name, version)
            with _mlflow_errors(f"Version {version} of {name!r}"):
                self.client.set_model_version_tag(name, str(version), key, value)

    def delete_tag(self, name: str, key: str, *, version: int | str | None = None) -> None:
        """Remove a tag from a model or one version."""
        if version is None:
            with _mlflow_errors(f"Tag {key!r} of {name!r}"):
                self.client.delete_registered_model_tag(name, key)
        else:
            self.get_version(name, version)
            with _mlflow_errors(f"Tag {key!r} of {name!r} version {version}"):
                self.client.delete_model_version_tag(name, str(version), key)

    # ------------------------------------------------------------------ aliases
    def set_alias(self, name: str, alias: str, version: int | str) -> None:
        """Point ``name@alias`` at a version (``MODEL_VERSION_ALIAS_SET``)."""
        self.get_version(name, version)
        with _mlflow_errors(f"Alias {alias!r} of {name!r}"):
            self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (``MODEL_VERSION_ALIAS_DELETED``)."""
        self.get_alias(name, alias)
        with _mlflow_errors(f"Alias {alias!r} of {name!r}"):
            self.client.delete_registered_model_alias(name, alias)

    def get_alias(self, name: str, alias: str) -> Any:
        """The version ``name@alias`` points at."""
        self.get_model(name)
        with _mlflow_errors(f"Alias {alias!r} of registered model {name!r}"):
            return self.client.get_model_version_by_alias(name, alias)

    # ------------------------------------------------------------------ stages
    def transition_stage(
        self,
        name: str,
        version: int | str,
        stage: str,
        *,
        archive_existing_versions: bool = False,
        comment: str | None = None,
        user_id: str | None = None,
    ) -> Any:
        """Move a version to ``None``, ``Staging``, ``Production`` or ``Archived``.

        Fires ``MODEL_VERSION_TRANSITIONED_STAGE`` and ``..._TO_<STAGE>``. With
        ``archive_existing_versions`` the versions already in that stage are archived.

        Example:
            >>> ws.models.transition_stage("churn", 2, "Production",           # doctest: +SKIP
            ...                            archive_existing_versions=True)
        """
        stage = canonical_stage(stage)
        if archive_existing_versions and stage not in ("Staging", "Production"):
            raise InvalidInput(
                f"archive_existing_versions only applies to Staging and Production, not {stage!r}."
            )
        current = self.get_version(name, version)
        user_id = user_id or _user()
        with (
            event_context(comment=comment, user_id=user_id),
            _mlflow_errors(f"Transition of {name!r} version {version} to {stage}"),
        ):
            result = self.client.transition_model_version_stage(
                name, str(version), stage, archive_existing_versions=archive_existing_versions
            )
        self._add_activity(
            name,
            str(version),
            "APPLIED_TRANSITION",
            user_id=user_id,
            from_stage=current.current_stage,
            to_stage=stage,
            comment=comment,
        )
        return result

    def archive(self, name: str, version: int | str, *, comment: str | None = None) -> Any:
        """Move a version to ``Archived``."""
        return self.transition_stage(name, version, "Archived", comment=comment)

    def latest_versions(
        self, name: str, *, stages: builtins.list[str] | None = None
    ) -> builtins.list[Any]:
        """The newest version in each stage (or in ``stages``)."""
        wanted = [canonical_stage(st) for st in stages] if stages else None
        self.get_model(name)
        with _mlflow_errors(f"Latest versions of {name!r}"):
            return list(self.client.get_latest_versions(name, stages=wanted))

    # ------------------------------------------------------------------ delete
    def _refuse_if_guarded(self, name: str, version: str | None) -> None:
        for guard in self.delete_guards:
            reason = guard(name, version)
            if reason:
                what = f"version {version} of {name!r}" if version else f"model {name!r}"
                raise Conflict(f"Cannot delete {what}: {reason}")

    def delete_version(self, name: str, version: int | str) -> None:
        """Delete a version (refused while a serving endpoint uses it)."""
        self.get_version(name, version)
        self._refuse_if_guarded(name, str(version))
        with _mlflow_errors(f"Deleting {name!r} version {version}"):
            self.client.delete_model_version(name, str(version))

    def delete_model(self, name: str) -> None:
        """Delete a model and all its versions (refused while a serving endpoint uses it)."""
        self.get_model(name)
        self._refuse_if_guarded(name, None)
        with _mlflow_errors(f"Deleting registered model {name!r}"):
            self.client.delete_registered_model(name)

    # ------------------------------------------------------------------ requests
    def create_transition_request(
        self,
        name: str,
        version: int | str,
        stage: str,
        *,
        comment: str | None = None,
        user_id: str | None = None,
    ) -> Activity:
        """Ask for a version to move to ``stage``; fires ``TRANSITION_REQUEST_CREATED``."""
        stage = canonical_stage(stage)
        current = self.get_version(name, version)
        version = str(version)
        user_id = user_id or _user()
        if current.current_stage == stage:
            raise Conflict(f"{name!r} version {version} is already in {stage}; nothing to request.")
        for pending in self.list_transition_requests(name, version):
            if pending.to_stage == stage and pending.user_id == user_id:
                raise AlreadyExists(
                    f"{user_id} already has a pending request to move {name!r} "
                    f"version {version} to {stage} (id {pending.id})."
                )
        with self.ws.metadata.begin() as conn:
            activity_id = self._insert(
                conn,
                name,
                version,
                "REQUESTED_TRANSITION",
                user_id=user_id,
                from_stage=current.current_stage,
                to_stage=stage,
                comment=comment,
                request_status="PENDING",
            )
            for event, text in transition_request_event(
                name, version, current.current_stage, stage, user_id
            ):
                self.outbox.emit(
                    event,
                    model_name=name,
                    version=version,
                    conn=conn,
                    from_stage=current.current_stage,
                    to_stage=stage,
                    comment=comment,
                    text=text,
                    user_id=user_id,
                )
        return self._get_activity(activity_id)

    def list_transition_requests(self, name: str, version: int | str) -> builtins.list[Activity]:
        """Pending transition requests of a version, oldest first."""
        self.get_version(name, version)
        a = s.activities
        with self.ws.metadata.engine.connect() as conn:
            rows = conn.execute(
                select(a)
                .where(a.c.model_name == name)
                .where(a.c.version == str(version))
                .where(a.c.request_status == "PENDING")
                .order_by(a.c.id)
            ).all()
        return [_activity(r) for r in rows]

    def pending_requests(self, name: str | None = None) -> builtins.list[Activity]:
        """Pending transition requests of every version of ``name`` (of every model when
        ``None``), oldest first, in one query (the workspace pages list them)."""
        a = s.activities
        query = select(a).where(a.c.request_status == "PENDING").order_by(a.c.id)
        if name is not None:
            query = query.where(a.c.model_name == name)
        with self.ws.metadata.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_activity(r) for r in rows]

    def _pending(
        self, name: str, version: str, stage: str, *, creator: str | None = None
    ) -> Activity:
        for request in self.list_transition_requests(name, version):
            if request.to_stage == stage and (creator is None or request.user_id == creator):
                return request
        by = f" by {creator}" if creator else ""
        raise Conflict(
            f"No pending request{by} to move {name!r} version {version} to {stage}; "
            "`lakebox models requests NAME VERSION` lists the pending ones."
        )

    def approve_transition_request(
        self,
        name: str,
        version: int | str,
        stage: str,
        *,
        archive_existing_versions: bool = False,
        comment: str | None = None,
        user_id: str | None = None,
    ) -> Activity:
        """Approve the pending request to move a version to ``stage`` and perform it."""
        stage = canonical_stage(stage)
        request = self._pending(name, str(version), stage)
        user_id = user_id or _user()
        previous = self.get_version(name, version).current_stage
        with (
            event_context(comment=comment, user_id=user_id),
            _mlflow_errors(f"Transition of {name!r} version {version} to {stage}"),
        ):
            self.client.transition_model_version_stage(
                name, str(version), stage, archive_existing_versions=archive_existing_versions
            )
        return self._close_request(request, "APPROVED", user_id, comment, previous)

    def reject_transition_request(
        self,
        name: str,
        version: int | str,
        stage: str,
        *,
        comment: str | None = None,
        user_id: str | None = None,
    ) -> Activity:
        """Reject the pending request to move a version to ``stage``."""
        stage = canonical_stage(stage)
        request = self._pending(name, str(version), stage)
        return self._close_request(
            request, "REJECTED", user_id or _user(), comment, request.from_stage
        )

    def cancel_transition_request(
        self,
        name: str,
        version: int | str,
        stage: str,
        *,
        creator: str | None = None,
        comment: str | None = None,
    ) -> Activity:
        """Cancel (delete) a pending request, by default the caller's own."""
        stage = canonical_stage(stage)
        creator = creator or _user()
        request = self._pending(name, str(version), stage, creator=creator)
        return self._close_request(request, "CANCELLED", creator, comment, request.from_stage)

    def _close_request(
        self,
        request: Activity,
        status: str,
        user_id: str,
        comment: str | None,
        from_stage: str | None,
    ) -> Activity:
        a = s.activities
        with self.ws.metadata.begin() as conn:
            closed = conn.execute(
                update(a)
                .where(a.c.id == request.id)
                .where(a.c.request_status == "PENDING")
                .values(request_status=status, last_updated_timestamp=now_ms())
            )
            if closed.rowcount != 1:
                raise Conflict(f"Transition request {request.id} is no longer pending.")
            activity_id = self._insert(
                conn,
                request.model_name,
                request.version,
                f"{status}_REQUEST",
                user_id=user_id,
                from_stage=from_stage,
                to_stage=request.to_stage,
                comment=comment,
                system_comment=f"Request {request.id} by {request.user_id} {status.lower()}.",
            )
        return self._get_activity(activity_id)

    # ------------------------------------------------------------------ comments
    def create_comment(
        self, name: str, version: int | str, comment: str, *, user_id: str | None = None
    ) -> Activity:
        """Comment on a version; fires ``COMMENT_CREATED``."""
        if not str(comment or "").strip():
            raise InvalidInput("A comment needs some text.")
        self.get_version(name, version)
        user_id = user_id or _user()
        with self.ws.metadata.begin() as conn:
            activity_id = self._insert(
                conn, name, str(version), "NEW_COMMENT", user_id=user_id, comment=comment
            )
            self.outbox.emit(
                "COMMENT_CREATED",
                model_name=name,
                version=str(version),
                conn=conn,
                comment=comment,
                user_id=user_id,
                text=f"{user_id} commented on registered model '{name}' version {version}.",
            )
        return self._get_activity(activity_id)

    def list_comments(self, name: str, version: int | str) -> builtins.list[Activity]:
        """Comments on a version, oldest first."""
        return [a for a in self.activities(name, version) if a.activity_type == "NEW_COMMENT"]

    def update_comment(self, comment_id: int | str, comment: str) -> Activity:
        """Change a comment's text."""
        found = self._get_activity(_activity_id(comment_id), kind="NEW_COMMENT")
        a = s.activities
        with self.ws.metadata.begin() as conn:
            conn.execute(
                update(a)
                .where(a.c.id == found.id)
                .values(comment=comment, last_updated_timestamp=now_ms())
            )
        return self._get_activity(found.id)

    def delete_comment(self, comment_id: int | str) -> None:
        """Delete a comment."""
        found = self._get_activity(_activity_id(comment_id), kind="NEW_COMMENT")
        with self.ws.metadata.begin() as conn:
            conn.execute(s.activities.delete().where(s.activities.c.id == found.id))

    def activities(self, name: str, version: int | str) -> builtins.list[Activity]:
        """Everything that happened to a version in lakebox: requests, transitions, comments."""
        a = s.activities
        with self.ws.metadata.engine.connect() as conn:
            rows = conn.execute(
                select(a)
                .where(a.c.model_name == name)
                .where(a.c.version == str(version))
                .order_by(a.c.id)
            ).all()
        return [_activity(r) for r in rows]

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _check_version(version: int | str) -> str:
        text = str(version).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < 1:
            raise InvalidInput(
                f"Invalid model version {version!r}: versions are positive "
                "integers such as 1 or '2'."
            )
        return str(int(text))

    def _insert(
        self, conn: Any, name: str, version: str, activity_type: str, *, user_id: str, **values: Any
    ) -> int:
        now = now_ms()
        result = conn.execute(
            s.activities.insert().values(
                model_name=name,
                version=version,
                activity_type=activity_type,
                user_id=user_id,
                creation_timestamp=now,
                last_updated_timestamp=now,
                **values,
            )
        )
        return int(result.inserted_primary_key[0])

    def _add_activity(
        self, name: str, version: str, activity_type: str, *, user_id: str, **values: Any
    ) -> int:
        with self.ws.metadata.begin() as conn:
            return self._insert(conn, name, version, activity_type, user_id=user_id, **values)

    def _get_activity(self, activity_id: int, *, kind: str | None = None) -> Activity:
        with self.ws.metadata.engine.connect() as conn:
            row = conn.execute(select(s.activities).where(s.activities.c.id == activity_id)).first()
        if row is None or (kind and row.activity_type != kind):
            noun = "Comment" if kind == "NEW_COMMENT" else "Activity"
            raise NotFound(f"{noun} {activity_id} does not exist.")
        return _activity(row)


def _activity_id(value: int | str) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidInput(f"Invalid comment id {value!r}: ids are integers such as '12'.")
    return int(text)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "lakebox"
