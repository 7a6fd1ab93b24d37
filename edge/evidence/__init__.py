"""Evidence of an exposure event: packet pre-roll, MP4 clips (remuxed), JPEG snapshots, the signed bundle."""

from edge.evidence.bundle import EvidenceFile, MediaType, build_event_message, detection_records, hash_content
from edge.evidence.clip import ClipError, StreamTemplate, write_clip
from edge.evidence.clocksync import clock_synchronised
from edge.evidence.ringbuffer import BufferedPacket, PacketLike, PacketRingBuffer
from edge.evidence.snapshot import DetectionsLike, draw_detections, encode_jpeg, encode_jpeg_with_boxes

__all__ = [
    "BufferedPacket",
    "ClipError",
    "DetectionsLike",
    "EvidenceFile",
    "MediaType",
    "PacketLike",
    "PacketRingBuffer",
    "StreamTemplate",
    "build_event_message",
    "clock_synchronised",
    "detection_records",
    "draw_detections",
    "encode_jpeg",
    "encode_jpeg_with_boxes",
    "hash_content",
    "write_clip",
]
