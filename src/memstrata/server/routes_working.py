"""``/v1/conversations/{conversation_id}/working``: read a conversation's working state, and set it — pin a
goal, add a task, close or reword an item, pin the topic, add or remove a constraint.

Reads need ``read``, edits ``write``, on the scope named by the query (GET, DELETE) or body (POST, PATCH,
PUT), exactly as the other routes. Every edit is recorded with the conversation's episodes, so the state a
restarted server rebuilds includes it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from memstrata.secure import SecuredMemory
from memstrata.server.auth import Secured
from memstrata.server.errors import PROBLEM_RESPONSES
from memstrata.server.routes_memories import ScopeIds, body_scope, ok
from memstrata.server.schemas_working import (
    AddItemRequest,
    ConstraintRequest,
    EditBody,
    TopicRequest,
    UpdateItemRequest,
    WorkingStateOut,
)

router = APIRouter(prefix="/v1/conversations/{conversation_id}/working", tags=["working"],
                   responses=PROBLEM_RESPONSES)


def _edit(mem: SecuredMemory, conversation_id: str, body: EditBody, edit: dict[str, Any],
          status: int = 200) -> JSONResponse:
    state = mem.update_working_state(conversation_id, edit, timestamp=body.timestamp, **body_scope(body))
    return ok(state.to_dict(), status)


@router.get("", response_model=WorkingStateOut, summary="A conversation's working state")
def get_working(conversation_id: str, mem: Secured, ids: ScopeIds) -> JSONResponse:
    """Goals and tasks with their status, entities in focus (latest first), topic and the user's constraints."""
    return ok(mem.working_state(conversation_id, **ids).to_dict())


@router.post("/items", status_code=201, response_model=WorkingStateOut, summary="Add (pin) a goal or task")
def add_item(conversation_id: str, body: AddItemRequest, mem: Secured) -> JSONResponse:
    """Add a goal or task; pinned (the default) means only the API changes it."""
    edit = {"op": "add_item", "kind": body.kind, "text": body.text, "pinned": body.pinned}
    return _edit(mem, conversation_id, body, edit, 201)


@router.patch("/items/{item_id}", response_model=WorkingStateOut, summary="Close, reopen, reword or pin an item")
def update_item(conversation_id: str, item_id: str, body: UpdateItemRequest, mem: Secured) -> JSONResponse:
    """Set an item's status (open, done, dropped), wording or pin."""
    edit = {"op": "update_item", "item_id": item_id, "status": body.status, "text": body.text, "pinned": body.pinned}
    return _edit(mem, conversation_id, body, edit)


@router.put("/topic", response_model=WorkingStateOut, summary="Pin or unpin the topic")
def set_topic(conversation_id: str, body: TopicRequest, mem: Secured) -> JSONResponse:
    """A topic set here holds until it is set to null, which hands it back to the conversation."""
    return _edit(mem, conversation_id, body, {"op": "set_topic", "topic": body.topic})


@router.post("/constraints", status_code=201, response_model=WorkingStateOut, summary="Add a constraint")
def add_constraint(conversation_id: str, body: ConstraintRequest, mem: Secured) -> JSONResponse:
    return _edit(mem, conversation_id, body, {"op": "add_constraint", "text": body.text}, 201)


@router.delete("/constraints/{constraint_id}", response_model=WorkingStateOut, summary="Remove a constraint")
def remove_constraint(conversation_id: str, constraint_id: str, mem: Secured, ids: ScopeIds) -> JSONResponse:
    state = mem.update_working_state(
        conversation_id, {"op": "remove_constraint", "constraint_id": constraint_id}, **ids
    )
    return ok(state.to_dict())
