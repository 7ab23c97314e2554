"""Shared documents for the collaborative editor: ordering, transformation and validation."""

from __future__ import annotations

from collections import deque

import anyio

from examples.demo.ot import Operation, OTError, apply, transform

__all__ = ["Document", "DocumentStore", "ResyncRequired"]


class ResyncRequired(Exception):
    """The edit is based on a version older than the history the server keeps."""


class Document:
    """One shared text. Edits are applied one at a time, in arrival order.

    ``submit`` never awaits: each edit is transformed past the operations accepted since its base
    version and applied atomically. Callers hold :attr:`lock` from ``submit`` until the accepted
    operation is published, so operations reach every client in version order.
    """

    def __init__(self, doc_id: str, *, max_history: int = 1000, max_length: int = 100_000) -> None:
        self.doc_id = doc_id
        self.text = ""
        self.version = 0
        self.max_length = max_length
        self._history: deque[Operation] = deque(maxlen=max_history)
        #: Held while an accepted edit is being broadcast, so broadcasts keep version order.
        self.lock = anyio.Lock()

    def submit(self, version: int, op: Operation) -> Operation:
        """Accept ``op`` based on ``version``; return it as applied to the current text."""
        if version < 0 or version > self.version:
            raise OTError(f"unknown version {version}; the document is at {self.version}")
        behind = self.version - version
        if behind > len(self._history):
            raise ResyncRequired(f"version {version} is too old; reload the document")
        if behind:
            history = list(self._history)
            for done in history[len(history) - behind :]:
                op, _ = transform(op, done)
        text = apply(self.text, op)
        if len(text) > self.max_length:
            raise OTError(f"the document may hold at most {self.max_length} characters")
        self.text = text
        self.version += 1
        self._history.append(op)
        return op


class DocumentStore:
    """Documents by id, created on first use."""

    def __init__(self, *, max_documents: int = 1000) -> None:
        self._docs: dict[str, Document] = {}
        self.max_documents = max_documents

    def get(self, doc_id: str) -> Document:
        """The document ``doc_id``, created empty when new."""
        doc = self._docs.get(doc_id)
        if doc is None:
            if len(self._docs) >= self.max_documents:
                raise OTError("too many documents")
            doc = self._docs[doc_id] = Document(doc_id)
        return doc
