"""Ingest: MQTT in, reassembled and verified evidence, idempotent filing, acks out."""

from central.ingest.assembler import FileAssembler
from central.ingest.consumer import MqttConsumer
from central.ingest.handler import IngestHandler, Outgoing
from central.ingest.refusal import Refusal
from central.ingest.transfers import FileResult
from central.ingest.verify import VerifiedEvent, verify_event

__all__ = [
    "FileAssembler",
    "FileResult",
    "IngestHandler",
    "MqttConsumer",
    "Outgoing",
    "Refusal",
    "VerifiedEvent",
    "verify_event",
]
