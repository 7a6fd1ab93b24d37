"""Detections over time -> exposure events (confirmed / update / cleared), per camera zone."""

from edge.events.camera import CameraExposure
from edge.events.exposure import EventKind, ExposureConfig, ExposureEvent, ExposureTracker, TrackerState
from edge.events.occlusion import OCCLUDER_CLASSES, Occluded, occluded_by
from edge.events.tracks import Box, PileTrack, match_tracks

__all__ = [
    "OCCLUDER_CLASSES",
    "Box",
    "CameraExposure",
    "EventKind",
    "ExposureConfig",
    "ExposureEvent",
    "ExposureTracker",
    "Occluded",
    "PileTrack",
    "TrackerState",
    "match_tracks",
    "occluded_by",
]
